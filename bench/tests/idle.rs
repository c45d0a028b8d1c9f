//! `uchat-bench idle` as a person runs it: the binary, its worker processes, a real server
//! (in this process, so the memory it reads is this process's).

use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sessions_are_held_across_workers_and_measured() {
    let cluster = e2e::TestCluster::start_with(|o| o.gateway.auth_per_minute = 1_000_000).await;
    let server = cluster.addr();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_uchat-bench"))
            .args(["idle", "--server", &server, "--json"])
            .args(["--clients", "12", "--per-process", "5", "--duration", "1"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let report: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(report["sessions"], 12, "{report} {stderr}");
    assert_eq!(report["failed"], 0, "{report}");
    assert_eq!(report["workers"], 3, "{report}");
    assert!(report["rss_held_mib"].as_f64().unwrap() > 0.0, "{report}");
}
