//! The library API: start a device inside the test's runtime, talk to it
//! with the real `ssh`, inspect its state directly, shut it down.

use std::process::{Command, Stdio};

use gatehouse_labdevice::device::Vendor;
use gatehouse_labdevice::routeros::RosModel;
use gatehouse_labdevice::{Options, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_talk_inspect_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("id");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(st.success());
    let public = std::fs::read_to_string(dir.path().join("id.pub")).unwrap();
    let mut opts = Options::new(Vendor::RouterOs, "Lab1", "admin", "pw");
    opts.authorized_keys = vec![russh::keys::PublicKey::from_openssh(public.trim()).unwrap()];
    let dev = start(opts).await.unwrap();
    let port = dev.addr.port();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("ssh")
            .args(["-F", "/dev/null", "-p", &port.to_string()])
            .args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
            ])
            .args(["-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-i"])
            .arg(&key)
            .arg("admin@127.0.0.1")
            .arg("/ip address add address=192.0.2.1/24 interface=ether2")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    {
        let model = dev.device.model();
        let m = model
            .downcast_ref::<RosModel>()
            .expect("a RouterOS device's state");
        assert_eq!(m.addresses.len(), 1);
        assert_eq!(m.addresses[0].interface, "ether2");
    }
    dev.shutdown().await;
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}
