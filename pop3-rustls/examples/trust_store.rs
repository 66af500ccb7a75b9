//! Which trust store the default `TlsOptions` use on this machine: the
//! operating system's (`SSL_CERT_FILE` / `SSL_CERT_DIR` honoured), or the
//! compiled-in webpki roots when the OS store is empty or unreadable.
//!
//! ```text
//! cargo run -p pop3-rustls --example trust_store
//! SSL_CERT_FILE=/path/to/ca.pem cargo run -p pop3-rustls --example trust_store
//! ```

use pop3_rustls::TlsOptions;

fn main() {
    let os = TlsOptions::new().with_native_roots().client_config();
    match &os {
        Ok(_) => println!("OS store: readable, so the default trusts it"),
        Err(e) => println!("OS store: {e}"),
    }
    match TlsOptions::new().client_config() {
        Ok(_) if os.is_ok() => println!("default: the OS store"),
        Ok(_) => println!("default: the compiled-in webpki roots (fallback)"),
        Err(e) => println!("default: unusable: {e}"),
    }
    let name = TlsOptions::new().server_name_for("pop.example.com");
    println!("server name for pop.example.com: {name:?}");
}
