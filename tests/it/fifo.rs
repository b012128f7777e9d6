//! Inputs read exactly once: `snapshot --path` of FIFOs fed by writer processes stores every byte they wrote, and restores it.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::util::*;

/// A deadlock guard: a FIFO opened twice waits for a writer that is gone, forever.
const GUARD: Duration = Duration::from_secs(60);

fn mkfifo(path: &std::path::Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("path");
    // SAFETY: a NUL-terminated path we own.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

/// Two FIFOs, each fed by its own `cat` (started before rbk, so both wait for a reader), and
/// a regular file between them, in one snapshot: each part holds exactly its writer's bytes.
#[test]
fn fifos_are_read_once_and_whole() {
    let env = Env::new();
    let data_a = text_bytes(3 * MIB, 11);
    let data_b = random_bytes(MIB + 17, 12);
    let a = env.write("a.src", &data_a);
    let b = env.write("b.src", &data_b);
    let plain = env.write("plain.txt", b"between the FIFOs");
    let (fa, fb) = (env.path("a.fifo"), env.path("b.fifo"));
    mkfifo(&fa);
    mkfifo(&fb);
    let writer = |src: &std::path::Path, fifo: &std::path::Path| {
        Command::new("sh")
            .arg("-c")
            .arg(format!("cat '{}' > '{}'", src.display(), fifo.display()))
            .stdin(Stdio::null())
            .spawn()
            .expect("writer")
    };
    let mut writers = [writer(&a, &fa), writer(&b, &fb)];

    let mut c = env.cmd(&[
        "--json",
        "snapshot",
        "--path",
        fa.to_str().unwrap(),
        "--path",
        plain.to_str().unwrap(),
        "--path",
        fb.to_str().unwrap(),
    ]);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let r = wait_with_guard(c.spawn().expect("rbk"), GUARD, "rbk snapshot --path FIFO");
    for w in &mut writers {
        // Ended by now if rbk read their FIFOs; killed (not waited for forever) otherwise.
        if w.try_wait().expect("try_wait").is_none() {
            let _ = w.kill();
        }
        let _ = w.wait();
    }
    assert_eq!(r.code, EXIT_OK, "{}", r.all());
    let snap = r.json();
    let sizes: Vec<u64> = snap["parts"]
        .as_array()
        .expect("parts")
        .iter()
        .map(|p| p["source_size"].as_u64().expect("size"))
        .collect();
    assert_eq!(
        sizes,
        [data_a.len() as u64, 17, data_b.len() as u64],
        "{snap}"
    );

    let to = env.path("restored");
    env.ok(&["restore", &id_of(&snap), "--to", to.to_str().unwrap()]);
    assert_file_is(&to.join("a.fifo"), &data_a, "the first FIFO's bytes");
    assert_file_is(&to.join("b.fifo"), &data_b, "the second FIFO's bytes");
    assert_file_is(&to.join("plain.txt"), b"between the FIFOs", "the file");
}
