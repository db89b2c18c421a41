use crate::harness::{is_root, wait_for, Daemon, Opts, TEN_SECS};
use std::process::Command;

/// Two network namespaces joined by a veth pair; deleted on drop, even on panic.
struct NetnsPair {
    names: [String; 2],
}

impl NetnsPair {
    fn create() -> NetnsPair {
        let tag = std::process::id() % 10_000;
        let names = [format!("fm{tag}a"), format!("fm{tag}b")];
        let pair = NetnsPair {
            names: names.clone(),
        };
        let ip = |args: &[&str]| {
            let st = Command::new("ip").args(args).status().expect("ip command");
            assert!(st.success(), "ip {args:?} failed");
        };
        let (va, vb) = (format!("v{tag}a"), format!("v{tag}b"));
        for n in &names {
            ip(&["netns", "add", n]);
        }
        ip(&["link", "add", &va, "type", "veth", "peer", "name", &vb]);
        for (i, (n, v)) in [(&names[0], &va), (&names[1], &vb)].into_iter().enumerate() {
            ip(&["link", "set", v, "netns", n]);
            let addr = format!("10.231.{}.{}/24", tag % 250, i + 1);
            ip(&["-n", n, "addr", "add", &addr, "dev", v]);
            ip(&["-n", n, "link", "set", v, "up"]);
            ip(&["-n", n, "link", "set", "lo", "up"]);
        }
        pair
    }
}

impl Drop for NetnsPair {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_discover_each_other_by_mdns_alone() {
    if !is_root() {
        eprintln!("skipped: needs root (netns)");
        return;
    }
    let ns = NetnsPair::create();
    let spawn = |n: &str| {
        Daemon::spawn(Opts {
            mdns: true,
            netns: Some(n.to_owned()),
            listen: vec!["/ip4/0.0.0.0/tcp/0".into()],
            ..Opts::default()
        })
    };
    let a = spawn(&ns.names[0]).await;
    let b = spawn(&ns.names[1]).await;
    for (x, y) in [(&a, &b), (&b, &a)] {
        wait_for(TEN_SECS * 3, "mDNS discovery and connection", || async {
            x.peers()
                .await
                .iter()
                .any(|p| p.peer_id == y.peer_id)
                .then_some(())
        })
        .await;
    }
    a.wait_subscribed(&b, "triage").await;
    b.wait_subscribed(&a, "triage").await;
    let id = a
        .send(
            "triage",
            "found you",
            std::time::Duration::from_secs(60),
            "p2",
        )
        .await;
    b.wait_message("triage", &id).await;
    assert!(a.log().contains("peer discovered") || b.log().contains("peer discovered"));
    drop((a, b));
}
