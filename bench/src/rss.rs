//! The server process seen from `/proc` (Linux; the server on this machine): which process
//! it is, its resident memory, and the CPU time it has used.

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

/// Clock ticks per second in `/proc/PID/stat` (`USER_HZ`, 100 on every Linux this runs on).
const USER_HZ: f64 = 100.0;

/// CPU time `pid` has used so far, user and system, in seconds.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("process {pid} is gone"))?;
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    // utime and stime are fields 14 and 15, so the 12th and 13th after the name.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let mut fields = after_name.split_whitespace().skip(11);
    match (fields.next(), fields.next()) {
        (Some(user), Some(system)) => {
            Ok((user.parse::<u64>()? + system.parse::<u64>()?) as f64 / USER_HZ)
        }
        _ => bail!("/proc/{pid}/stat is not as expected"),
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

    #[test]
    fn counts_the_cpu_time_it_uses() {
        let before = super::cpu_seconds(std::process::id()).unwrap();
        let started = std::time::Instant::now();
        let mut spin = 0u64;
        while started.elapsed() < std::time::Duration::from_millis(300) {
            spin = std::hint::black_box(spin.wrapping_add(1));
        }
        let after = super::cpu_seconds(std::process::id()).unwrap();
        assert!(after - before >= 0.1, "{before} -> {after}");
    }
}
