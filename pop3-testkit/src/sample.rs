//! Content for [`Mailbox::sample`](crate::Mailbox::sample) and
//! [`Mailbox::generate`](crate::Mailbox::generate).

/// Converts `\n` line endings to CRLF (text written with LF in the source).
pub(crate) fn to_crlf(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + text.len() / 40);
    for b in text.bytes() {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

pub(crate) const SAMPLE_MESSAGES: [&str; 6] = [
    "Return-Path: <maria.lopez@example.org>
Received: from mail.example.org (mail.example.org [192.0.2.10])
\tby mx.example.com with ESMTPS id 4a1b2c3d
\tfor <alice@example.com>; Mon, 06 Jan 2025 09:14:02 +0000
From: Maria Lopez <maria.lopez@example.org>
To: Alice Example <alice@example.com>
Subject: Lunch on Thursday?
Date: Mon, 06 Jan 2025 10:13:55 +0100
Message-ID: <20250106091355.1234@example.org>
MIME-Version: 1.0
Content-Type: text/plain; charset=UTF-8
Content-Transfer-Encoding: 7bit

Hi Alice,

Are you free for lunch on Thursday? The new place on Market Street
finally opened and I hear the soup is excellent.

Cheers,
Maria
",
    "From: GitHub <noreply@github.example>
To: alice@example.com
Subject: [pop3] Build failed on main (a1b2c3d)
Date: Tue, 07 Jan 2025 16:02:11 -0800
Message-ID: <ci-run-98765@github.example>
MIME-Version: 1.0
Content-Type: text/plain; charset=UTF-8
List-Id: pop3 <pop3.example.github.example>

The workflow \"CI\" failed for commit a1b2c3d on branch main.

  test result: FAILED. 41 passed; 1 failed; 0 ignored

View the run: https://github.example/example/pop3/actions/runs/98765
",
    "From: =?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <juergen@example.de>
To: alice@example.com
Subject: =?UTF-8?B?R3LDvMOfZSBhdXMgTcO8bmNoZW4g4pyI?=
Date: Wed, 08 Jan 2025 08:30:00 +0100
Message-ID: <a8f3e1@example.de>
MIME-Version: 1.0
Content-Type: text/plain; charset=UTF-8
Content-Transfer-Encoding: 8bit

Hallo Alice,

viele Grüße aus München! Das Wetter ist kalt, aber sonnig.

Bis bald,
Jürgen
",
    "From: Newsletter Team <news@shop.example.net>
To: alice@example.com
Subject: Your January newsletter
Date: Thu, 09 Jan 2025 12:00:00 +0000
Message-ID: <newsletter-2025-01@shop.example.net>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary=\"=_boundary_42\"

This is a multi-part message in MIME format.

--=_boundary_42
Content-Type: text/plain; charset=UTF-8
Content-Transfer-Encoding: quoted-printable

Happy new year! This month: 20% off everything =E2=80=94 use code JAN20.
A very long line that quoted-printable has to wrap at seventy-six charac=
ters, like this one.

--=_boundary_42
Content-Type: text/html; charset=UTF-8
Content-Transfer-Encoding: quoted-printable

<html><body><h1>Happy new year!</h1><p>This month: 20% off everything =E2=
=80=94 use code <b>JAN20</b>.</p></body></html>

--=_boundary_42--
",
    "From: Bob Builder <bob@example.com>
To: alice@example.com
Cc: team@example.com
Subject: Re: config file format
Date: Fri, 10 Jan 2025 17:45:12 -0500
Message-ID: <bob-20250110-1@example.com>
In-Reply-To: <alice-20250110-7@example.com>
References: <alice-20250110-7@example.com>
MIME-Version: 1.0
Content-Type: text/plain; charset=US-ASCII

Alice wrote:
> Which files does the tool read?

These ones, all starting with a dot:
.pop3rc
.netrc
...and a line that is just a dot follows
.
That was the line. Dot-stuffing must round-trip it.

Bob
",
    "From: \"IT Service Desk\" <it-desk@example.com>
To: alice@example.com
Subject: Scheduled maintenance this weekend
Date: Sat, 11 Jan 2025 06:00:00 +0000
Message-ID: <maint-2025-02@example.com>
MIME-Version: 1.0
Content-Type: text/plain; charset=UTF-8
Importance: high

Mail services will be unavailable on Sunday between 02:00 and 04:00 UTC
while we upgrade the storage cluster. No action is needed on your side.

-- 
IT Service Desk
",
];

const WORDS: [&str; 48] = [
    "the",
    "mail",
    "server",
    "client",
    "message",
    "delivery",
    "protocol",
    "queue",
    "report",
    "quarterly",
    "meeting",
    "schedule",
    "invoice",
    "attached",
    "please",
    "review",
    "update",
    "project",
    "deadline",
    "network",
    "latency",
    "throughput",
    "pipeline",
    "command",
    "reply",
    "status",
    "mailbox",
    "folder",
    "archive",
    "backup",
    "restore",
    "weekend",
    "morning",
    "thanks",
    "regards",
    "question",
    "answer",
    "draft",
    "final",
    "version",
    "release",
    "budget",
    "team",
    "office",
    "travel",
    "coffee",
    "window",
    "garden",
];

/// A tiny deterministic PRNG (splitmix64) so generated content never changes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

pub(crate) fn generate_message(index: usize, size: usize) -> Vec<u8> {
    let mut rng = Rng(0x5EED_0000 ^ (index as u64).wrapping_mul(0x1000_0001));
    let mut out = Vec::with_capacity(size + 128);
    let day = index % 28 + 1;
    let hour = index % 24;
    let subject_words: Vec<&str> = (0..4).map(|_| WORDS[rng.below(WORDS.len())]).collect();
    out.extend_from_slice(
        format!(
            "From: Sender {n} <sender{n}@example.org>\r\n\
To: bench@example.com\r\n\
Subject: [{n}] {s}\r\n\
Date: Tue, {day:02} Feb 2025 {hour:02}:{min:02}:00 +0000\r\n\
Message-ID: <gen-{n}@example.org>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=US-ASCII\r\n\
\r\n",
            n = index + 1,
            s = subject_words.join(" "),
            min = index % 60,
        )
        .as_bytes(),
    );
    let mut line_no = 0usize;
    while out.len() < size {
        let mut line = String::new();
        if line_no % 12 == 5 {
            line.push('.');
        }
        let target = 20 + rng.below(57); // 20..=76 characters
        loop {
            let w = WORDS[rng.below(WORDS.len())];
            if line.len() + w.len() + 1 > target && !line.is_empty() {
                break;
            }
            if !line.is_empty() && !line.ends_with('.') {
                line.push(' ');
            }
            line.push_str(w);
        }
        line.push_str("\r\n");
        let remaining = size.saturating_sub(out.len());
        if line.len() > remaining && remaining >= 3 {
            // Finish exactly at `size` with a short filler line.
            let mut filler = "x".repeat(remaining - 2);
            filler.push_str("\r\n");
            out.extend_from_slice(filler.as_bytes());
            break;
        }
        out.extend_from_slice(line.as_bytes());
        line_no += 1;
    }
    out
}
