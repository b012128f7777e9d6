//! Why the Docker engine could not be reached, as one plain sentence instead of the HTTP client's error chain.

use std::io;

use anyhow::anyhow;

/// The socket's path for `unix://` hosts, the address as given for the others.
pub(super) fn socket_of(host: &str) -> &str {
    host.strip_prefix("unix://").unwrap_or(host)
}

/// Why the engine at `host` could not be reached, as one plain sentence: the OS error at
/// the bottom of the client's error says whether the socket is missing, refused or not ours.
pub(super) fn unreachable_engine(host: &str, e: &bollard::errors::Error) -> anyhow::Error {
    let socket = socket_of(host);
    let mut io_kind = None;
    let mut innermost: &dyn std::error::Error = e;
    let mut cause: Option<&dyn std::error::Error> = Some(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<io::Error>() {
            io_kind = Some(io.kind());
        }
        innermost = c;
        cause = c.source();
    }
    match (e, io_kind) {
        (bollard::errors::Error::SocketNotFoundError(_), _)
        | (_, Some(io::ErrorKind::NotFound)) => {
            anyhow!(
                "there is no Docker socket at {socket}: is Docker running? (If it listens elsewhere, set DOCKER_HOST)"
            )
        }
        (_, Some(io::ErrorKind::ConnectionRefused)) if host.starts_with("unix://") => {
            anyhow!("the Docker socket {socket} refuses connections: is Docker running?")
        }
        (_, Some(io::ErrorKind::ConnectionRefused)) => {
            anyhow!("the Docker engine at {host} refuses connections: is Docker running?")
        }
        (_, Some(io::ErrorKind::PermissionDenied)) => anyhow!(
            "permission denied on the Docker socket {socket}: run as root or as a member of the docker group"
        ),
        (bollard::errors::Error::UnsupportedURISchemeError { .. }, _) => anyhow!(
            "DOCKER_HOST={host} is not an address rbk can use (unix:///PATH, tcp://HOST:PORT or http://HOST:PORT)"
        ),
        _ => anyhow!("cannot reach the Docker engine at {socket}: {innermost}"),
    }
}
