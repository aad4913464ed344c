//! A small TCP proxy between the app and PostgreSQL that a test can cut,
//! blackhole, freeze and restore, so a database outage is simulated without
//! stopping the shared server. Modelled on crates.io's `ChaosProxy`.
//!
//! Three failure flavours, each closer to a real network fault:
//!
//! - [`ChaosProxy::cut`]: every live connection is closed at once and new
//!   ones are refused (the listener is dropped): the database went away.
//! - [`ChaosProxy::blackhole`]: live connections are closed, new ones are
//!   accepted but never answered, and stay unanswered even after
//!   [`ChaosProxy::restore`]: packets lost for good. Only a client-side
//!   connect timeout gets the app out of those.
//! - [`ChaosProxy::freeze`]: live connections stay open but nothing flows
//!   either way, so an in-flight query waits with no error; on restore they
//!   carry on. Only a deadline in the app keeps requests from hanging.

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does with traffic right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Forward both ways.
    Forward,
    /// Close live connections; refuse new ones.
    Cut,
    /// Close live connections; accept new ones and never answer.
    Blackhole,
    /// Keep connections open but pass nothing until restored.
    Freeze,
    /// The proxy is dropped: close everything.
    Shutdown,
}

/// A running proxy; dropping it closes every connection it holds.
pub struct ChaosProxy {
    /// The address the app connects to.
    address: SocketAddr,
    mode: watch::Sender<Mode>,
}

impl ChaosProxy {
    /// Starts a proxy on `127.0.0.1:0` forwarding to `target`, on its own
    /// thread and runtime: the app connects synchronously at startup, which
    /// would otherwise block the very runtime the proxy needs.
    pub fn start(target: SocketAddr) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the chaos proxy");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let address = listener.local_addr().expect("chaos proxy address");
        let (mode, _) = watch::channel(Mode::Forward);
        let receiver = mode.subscribe();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("chaos proxy runtime");
        std::thread::Builder::new()
            .name("chaos-proxy".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = TcpListener::from_std(listener).expect("tokio listener");
                    accept_loop(listener, address, target, receiver).await;
                });
            })
            .expect("chaos proxy thread");
        Self { address, mode }
    }

    /// Starts a proxy for the server of a `postgres://` URL and returns it
    /// with the same URL pointed at the proxy.
    pub fn for_database_url(url: &str) -> (Self, String) {
        let mut url = url::Url::parse(url).expect("database URL");
        let target = url
            .socket_addrs(|| Some(5432))
            .expect("resolve the database host")
            .into_iter()
            .next()
            .expect("the database URL names an address");
        let proxy = Self::start(target);
        url.set_ip_host(proxy.address.ip()).expect("set proxy host");
        url.set_port(Some(proxy.address.port()))
            .expect("set proxy port");
        (proxy, url.to_string())
    }

    /// Closes every live connection and refuses new ones.
    pub fn cut(&self) {
        self.mode.send_replace(Mode::Cut);
    }

    /// Closes every live connection; new ones are accepted and then left
    /// silent forever, even after [`ChaosProxy::restore`].
    pub fn blackhole(&self) {
        self.mode.send_replace(Mode::Blackhole);
    }

    /// Stops all traffic without closing anything.
    pub fn freeze(&self) {
        self.mode.send_replace(Mode::Freeze);
    }

    /// Forwards again (frozen connections resume).
    pub fn restore(&self) {
        self.mode.send_replace(Mode::Forward);
    }
}

impl Drop for ChaosProxy {
    fn drop(&mut self) {
        self.mode.send_replace(Mode::Shutdown);
    }
}

/// Accepts while not cut; while cut the port is closed, so connecting to it
/// is refused, and it is bound again on restore.
async fn accept_loop(
    listener: TcpListener,
    address: SocketAddr,
    target: SocketAddr,
    mut mode: watch::Receiver<Mode>,
) {
    let mut listener = Some(listener);
    loop {
        let current = *mode.borrow_and_update();
        match (current, &listener) {
            (Mode::Shutdown, _) => return,
            (Mode::Cut, Some(_)) => listener = None,
            (Mode::Cut, None) => {}
            (_, None) => match TcpListener::bind(address).await {
                Ok(bound) => listener = Some(bound),
                Err(err) => panic!("chaos proxy cannot bind {address} again: {err}"),
            },
            (_, Some(_)) => {}
        }
        let Some(open) = &listener else {
            if mode.changed().await.is_err() {
                return;
            }
            continue;
        };
        tokio::select! {
            accepted = open.accept() => {
                if let Ok((client, _)) = accepted {
                    tokio::spawn(serve(client, target, mode.clone()));
                }
            }
            changed = mode.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

/// One proxied connection, from accept to close.
async fn serve(client: TcpStream, target: SocketAddr, mut mode: watch::Receiver<Mode>) {
    let accepted_in = *mode.borrow_and_update();
    if accepted_in == Mode::Blackhole {
        // Hold the socket, answering nothing, until the proxy goes away.
        while *mode.borrow_and_update() != Mode::Shutdown {
            if mode.changed().await.is_err() {
                break;
            }
        }
        return;
    }
    if wait_until_open(&mut mode).await.is_err() {
        return;
    }
    let Ok(upstream) = TcpStream::connect(target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (upstream_read, upstream_write) = upstream.into_split();
    // On a cut both pumps return and drop their halves: both sockets close.
    tokio::join!(
        pump(client_read, upstream_write, mode.clone()),
        pump(upstream_read, client_write, mode),
    );
}

/// Copies one direction while forwarding; pauses while frozen; stops (which
/// closes the halves) on a cut, a blackhole, shutdown or end of stream.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut mode: watch::Receiver<Mode>) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        if wait_until_open(&mut mode).await.is_err() {
            return;
        }
        let read = tokio::select! {
            read = from.read(&mut buffer) => read,
            // Re-check the mode before reading on.
            _ = mode.changed() => continue,
        };
        let n = match read {
            Ok(0) | Err(_) => {
                let _ = to.shutdown().await;
                return;
            }
            Ok(n) => n,
        };
        if wait_until_open(&mut mode).await.is_err() {
            return;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}

/// Returns when traffic may flow; waits while frozen; errs when the
/// connection must close.
async fn wait_until_open(mode: &mut watch::Receiver<Mode>) -> io::Result<()> {
    loop {
        match *mode.borrow_and_update() {
            Mode::Forward => return Ok(()),
            Mode::Freeze => {}
            Mode::Cut | Mode::Blackhole | Mode::Shutdown => {
                return Err(io::ErrorKind::ConnectionAborted.into())
            }
        }
        if mode.changed().await.is_err() {
            return Err(io::ErrorKind::ConnectionAborted.into());
        }
    }
}
