//! The server's resident memory, read from `/proc` (Linux; the server on this machine).

use std::net::SocketAddr;

use anyhow::{Context, bail};

/// Finds the process listening on `addr`'s port: the socket's inode in `/proc/net/tcp{,6}`,
/// then the process holding it. Needs permission to read that process's descriptors.
pub fn listener_pid(addr: SocketAddr) -> anyhow::Result<u32> {
    let port = format!("{:04X}", addr.port());
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // local_address is field 1 (`HEX_IP:HEX_PORT`), st field 3 (0A: listening),
            // inode field 9.
            let (Some(local), Some(state), Some(inode)) =
                (fields.get(1), fields.get(3), fields.get(9))
            else {
                continue;
            };
            if *state == "0A" && local.ends_with(&format!(":{port}")) {
                inodes.push(format!("socket:[{inode}]"));
            }
        }
    }
    if inodes.is_empty() {
        bail!("nothing listens on port {} here", addr.port());
    }
    for process in std::fs::read_dir("/proc").context("read /proc")?.flatten() {
        let Ok(pid) = process.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(process.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path())
                && inodes.iter().any(|i| target.as_os_str() == i.as_str())
            {
                return Ok(pid);
            }
        }
    }
    bail!(
        "cannot find the process listening on port {} (give --server-pid)",
        addr.port()
    )
}

/// A process's resident memory now and at its peak, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resident {
    /// `VmRSS`.
    pub now: u64,
    /// `VmHWM`, the high-water mark.
    pub peak: u64,
}

/// Reads `pid`'s resident memory.
pub fn resident(pid: u32) -> anyhow::Result<Resident> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("process {pid} is gone"))?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    };
    match (field("VmRSS:"), field("VmHWM:")) {
        (Some(now), Some(peak)) => Ok(Resident { now, peak }),
        _ => bail!("/proc/{pid}/status has no VmRSS"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_its_own_listener_and_reads_its_memory() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        assert_eq!(super::listener_pid(addr).unwrap(), std::process::id());
        let memory = super::resident(std::process::id()).unwrap();
        assert!(memory.now > 0 && memory.peak >= memory.now);
    }
}
