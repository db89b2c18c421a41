//! The control channel's local endpoint, the only platform-specific part of the
//! control protocol: a Unix-domain socket file (mode 0600) on Unix, a named pipe
//! that refuses remote clients on Windows. [`super::control`] speaks JSON Lines
//! over a [`LocalStream`] and never sees the difference.
//!
//! Both are reachable only from the same machine. On Unix the socket's mode and the
//! data dir's (0700) keep other users out. On Windows the pipe carries the default
//! security descriptor of a named pipe (full control for the creator, LocalSystem and
//! administrators; read-only for others, who cannot send a request) and is named
//! after the socket path, so one data dir has one pipe.

use std::io;
use std::path::Path;

/// A connected control stream (either end).
#[cfg(unix)]
pub type LocalStream = tokio::net::UnixStream;

/// A connected control stream (either end): the server and client ends of a named
/// pipe are different types, so both are boxed.
#[cfg(windows)]
pub type LocalStream = Box<dyn Duplex>;

/// What a Windows [`LocalStream`] is: a byte stream in both directions.
#[cfg(windows)]
pub trait Duplex: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
#[cfg(windows)]
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Duplex for T {}

/// Why [`LocalListener::bind`] failed.
#[derive(Debug)]
pub enum BindError {
    /// A live node already answers on this endpoint.
    InUse,
    /// The endpoint could not be created.
    Io(io::Error),
}

/// The server end: accepts control clients until dropped. On Unix, dropping it
/// removes the socket file.
pub struct LocalListener {
    #[cfg(unix)]
    inner: tokio::net::UnixListener,
    #[cfg(unix)]
    path: std::path::PathBuf,
    #[cfg(windows)]
    name: String,
    /// The pipe instance the next client will connect to.
    #[cfg(windows)]
    next: tokio::net::windows::named_pipe::NamedPipeServer,
}

#[cfg(unix)]
impl LocalListener {
    /// Binds the socket at `path` with mode 0600, replacing a stale socket file
    /// that no live node answers on.
    pub async fn bind(path: &Path) -> Result<LocalListener, BindError> {
        use std::os::unix::fs::PermissionsExt;
        if path.exists() {
            if tokio::net::UnixStream::connect(path).await.is_ok() {
                return Err(BindError::InUse);
            }
            std::fs::remove_file(path).map_err(BindError::Io)?;
        }
        let inner = tokio::net::UnixListener::bind(path).map_err(BindError::Io)?;
        let listener = LocalListener {
            inner,
            path: path.to_owned(),
        };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(BindError::Io)?;
        Ok(listener)
    }

    /// Waits for the next client. Cancel-safe.
    pub async fn accept(&mut self) -> io::Result<LocalStream> {
        self.inner.accept().await.map(|(s, _)| s)
    }
}

#[cfg(unix)]
impl Drop for LocalListener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Connects to the node listening at `path`.
#[cfg(unix)]
pub async fn connect(path: &Path) -> io::Result<LocalStream> {
    tokio::net::UnixStream::connect(path).await
}

/// The pipe name for a socket path: `\\.\pipe\fieldmesh-` and the first 16 bytes
/// of the SHA-256 of the path, in hex.
pub fn pipe_name(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(path.to_string_lossy().as_bytes());
    format!(
        r"\\.\pipe\fieldmesh-{}",
        data_encoding::HEXLOWER.encode(&digest[..16])
    )
}

#[cfg(windows)]
impl LocalListener {
    /// Creates the first instance of the pipe named after `path`; the system
    /// refuses it if a live node already holds that name.
    pub async fn bind(path: &Path) -> Result<LocalListener, BindError> {
        use tokio::net::windows::named_pipe::ServerOptions;
        let name = pipe_name(path);
        let next = ServerOptions::new()
            .first_pipe_instance(true)
            .reject_remote_clients(true)
            .create(&name)
            .map_err(|e| match e.kind() {
                io::ErrorKind::PermissionDenied => BindError::InUse,
                _ => BindError::Io(e),
            })?;
        Ok(LocalListener { name, next })
    }

    /// Waits for the next client, then opens the instance the one after it will
    /// use. Cancel-safe: a cancelled wait leaves the same instance waiting.
    pub async fn accept(&mut self) -> io::Result<LocalStream> {
        use tokio::net::windows::named_pipe::ServerOptions;
        self.next.connect().await?;
        let fresh = ServerOptions::new()
            .reject_remote_clients(true)
            .create(&self.name)?;
        Ok(Box::new(std::mem::replace(&mut self.next, fresh)))
    }
}

/// Connects to the node listening at `path`, waiting a little while every
/// instance of its pipe is busy.
#[cfg(windows)]
pub async fn connect(path: &Path) -> io::Result<LocalStream> {
    use tokio::net::windows::named_pipe::ClientOptions;
    /// `ERROR_PIPE_BUSY`: every instance is taken; the server opens another soon.
    const ERROR_PIPE_BUSY: i32 = 231;
    let name = pipe_name(path);
    let mut tries = 0;
    loop {
        match ClientOptions::new().open(&name) {
            Ok(client) => return Ok(Box::new(client)),
            Err(e) if e.raw_os_error() == Some(ERROR_PIPE_BUSY) && tries < 40 => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn pipe_names_differ_per_path_and_are_stable() {
        let a = pipe_name(Path::new("/data/a/control.sock"));
        assert_eq!(a, pipe_name(Path::new("/data/a/control.sock")));
        assert_ne!(a, pipe_name(Path::new("/data/b/control.sock")));
        assert!(a.starts_with(r"\\.\pipe\fieldmesh-"));
        assert_eq!(a.len(), r"\\.\pipe\fieldmesh-".len() + 32);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn bind_accept_connect_refuse_a_second_listener_and_clean_up() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.sock");
        let mut listener = LocalListener::bind(&path).await.unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        let (mut client, server) = tokio::join!(connect(&path), listener.accept());
        let mut server = server.unwrap();
        client.as_mut().unwrap().write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        server.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");

        // A second node for the same data dir finds this one alive.
        assert!(matches!(
            LocalListener::bind(&path).await,
            Err(BindError::InUse)
        ));

        drop(listener);
        assert!(!path.exists(), "the socket file outlived its listener");
        assert!(connect(&path).await.is_err());
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_stale_socket_file_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.sock");
        // A socket file nobody listens on, as a killed node leaves it.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let mut listener = LocalListener::bind(&path).await.unwrap();
        let (client, server) = tokio::join!(connect(&path), listener.accept());
        assert!(client.is_ok() && server.is_ok());
    }
}
