//! A local SMTP server for the tests: a tokio listener that speaks just
//! enough SMTP (220, EHLO/HELO, MAIL, RCPT, DATA … ".", RSET, NOOP, QUIT)
//! to receive what tessera sends, and can be told to refuse mail with a
//! 4xx or 5xx reply until told to accept again.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// One mail as the sink received it.
#[derive(Debug, Clone)]
pub struct Received {
    /// The `MAIL FROM` address.
    pub from: String,
    /// The `RCPT TO` addresses.
    pub to: Vec<String>,
    /// Headers and body as sent, dot-stuffing undone.
    pub data: String,
}

impl Received {
    /// The first 43-character base64url word (a token) after `marker` in
    /// the data, undoing quoted-printable's `=3D`.
    pub fn token(&self) -> String {
        let data = self.data.replace("=\r\n", "").replace("=3D", "=");
        data.split(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '=' | '&'))
            .find(|word| {
                word.len() == 43
                    && word
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            })
            .unwrap_or_else(|| panic!("no token in mail:\n{}", self.data))
            .to_owned()
    }

    /// A header's value ("" when absent).
    pub fn header(&self, name: &str) -> String {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        self.data
            .lines()
            .take_while(|line| !line.is_empty())
            .find(|line| line.to_ascii_lowercase().starts_with(&prefix))
            .map(|line| line[prefix.len()..].trim().to_owned())
            .unwrap_or_default()
    }
}

#[derive(Default)]
struct State {
    mails: Vec<Received>,
    /// The reply to MAIL FROM while refusing, e.g. "451 4.3.0 try later".
    refusal: Option<String>,
    /// MAIL FROM commands refused so far.
    refused: usize,
}

/// A running sink; it stops with the test's runtime.
pub struct SmtpSink {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl SmtpSink {
    /// Starts a sink on a free loopback port.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind sink");
        let addr = listener.local_addr().expect("sink address");
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::clone(&state);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(session(stream, Arc::clone(&shared)));
            }
        });
        Self { addr, state }
    }

    /// `SMTP_URL` for tessera (no TLS: a local relay).
    pub fn url(&self) -> String {
        format!("smtp+plain://{}", self.addr)
    }

    /// Refuses every mail with `reply` (a full SMTP reply line) from now on.
    pub fn refuse(&self, reply: &str) {
        self.state.lock().unwrap().refusal = Some(reply.to_owned());
    }

    /// Accepts mail again.
    pub fn accept(&self) {
        self.state.lock().unwrap().refusal = None;
    }

    /// How many mails were refused so far.
    pub fn refused(&self) -> usize {
        self.state.lock().unwrap().refused
    }

    /// The mails received so far.
    pub fn mails(&self) -> Vec<Received> {
        self.state.lock().unwrap().mails.clone()
    }

    /// Waits until at least `count` mails arrived, at most `within`.
    pub async fn wait_for(&self, count: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let mails = self.mails();
            if mails.len() >= count {
                return mails;
            }
            assert!(
                Instant::now() < deadline,
                "{} mail(s) received within {within:?}, expected {count}",
                mails.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `condition` holds for the sink, at most `within`.
    pub async fn wait_until(&self, within: Duration, condition: impl Fn(&SmtpSink) -> bool) {
        let deadline = Instant::now() + within;
        while !condition(self) {
            assert!(
                Instant::now() < deadline,
                "condition not met within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// One SMTP conversation.
async fn session(stream: TcpStream, state: Arc<Mutex<State>>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    if write.write_all(b"220 sink.test ESMTP\r\n").await.is_err() {
        return;
    }
    let mut from = String::new();
    let mut to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        match lines.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let command = line.trim_end().to_owned();
        let upper = command.to_ascii_uppercase();
        let answer: String = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            "250 sink.test".into()
        } else if upper.starts_with("MAIL FROM:") {
            let mut state = state.lock().unwrap();
            if let Some(refusal) = state.refusal.clone() {
                state.refused += 1;
                refusal
            } else {
                from = address_of(&command["MAIL FROM:".len()..]);
                to.clear();
                "250 2.1.0 ok".into()
            }
        } else if upper.starts_with("RCPT TO:") {
            to.push(address_of(&command["RCPT TO:".len()..]));
            "250 2.1.5 ok".into()
        } else if upper == "DATA" {
            if write.write_all(b"354 end with .\r\n").await.is_err() {
                return;
            }
            let mut data = String::new();
            loop {
                line.clear();
                match lines.read_line(&mut line).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                let unstuffed = line.strip_prefix('.').unwrap_or(&line);
                data.push_str(unstuffed);
            }
            state.lock().unwrap().mails.push(Received {
                from: from.clone(),
                to: to.clone(),
                data,
            });
            "250 2.0.0 queued".into()
        } else if upper == "RSET" || upper == "NOOP" {
            "250 2.0.0 ok".into()
        } else if upper == "QUIT" {
            let _ = write.write_all(b"221 2.0.0 bye\r\n").await;
            return;
        } else {
            "500 5.5.2 unknown command".into()
        };
        if write
            .write_all(format!("{answer}\r\n").as_bytes())
            .await
            .is_err()
        {
            return;
        }
    }
}

/// `<a@b> SIZE=…` → `a@b`.
fn address_of(argument: &str) -> String {
    argument
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_owned()
}
