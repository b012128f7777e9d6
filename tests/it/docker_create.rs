//! Docker tests of a drill's throwaway world (`rbk::source::docker`: `create_drill_network`, `create_drill_volume`, `create_drill_container`, `remove_drill`, `drill_leftovers`) against the real engine and the test image.
//!
//! There is no rbk command for drills yet, so the tests drive the library on a tokio runtime
//! of their own and look at the result with the docker CLI, as the stack tests do. A container
//! the test starts itself from the image, on the default bridge, stands in for production:
//! it must keep running, with the same start time, through everything a drill does. Each test
//! names its objects after its pid and removes them in a Drop guard, so a failed assertion
//! leaves nothing behind. They run one at a time with the stack tests (`docker_turn`), but,
//! as a drill runs beside a live stack, do not need an engine free of other stacks;
//! `RBK_SKIP_DOCKER=1` skips them.

use std::collections::BTreeMap;
use std::time::Duration;

use rbk::source::docker::{ContainerSpec, Drill, DrillMount, Engine, Teardown};

use crate::stack::{
    IMAGE, docker, docker_out, docker_turn, inspect, is_running, lines, wait_until,
};

/// A value that must never show in an error or a debug print of a spec.
const SECRET: &str = "s3cret-drill-value-4d1f";
/// What `everything` finds once a drill is gone.
const NOTHING: [Vec<String>; 3] = [Vec::new(), Vec::new(), Vec::new()];

/// Answers every connection on port 7687 with one line: the stand-in for a database server
/// (the drill server and production both run it).
const LISTENER: &str = r#"
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 7687))
s.listen()
while True:
    c, _ = s.accept()
    c.sendall(b"hello on 7687\n")
    c.close()
"#;

/// Connects to `sys.argv[1]`:7687 and prints what it says; exits 1 with the error otherwise.
const CLIENT: &str = r#"
import socket, sys
try:
    c = socket.create_connection((sys.argv[1], 7687), timeout=3)
    print(c.recv(100).decode().strip())
except OSError as e:
    print(f"errno={e.errno} {e}")
    sys.exit(1)
"#;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// What the test made itself (the stand-in production container and volume) and every drill
/// object of its project, removed when the test ends however it ends.
struct Cleanup {
    project: String,
    containers: Vec<String>,
    volumes: Vec<String>,
}

impl Drop for Cleanup {
    /// Never panics (a panic while unwinding would abort): failures are only reported.
    fn drop(&mut self) {
        let label = format!("label=io.rbk.project={}", self.project);
        let ids = |args: &[&str]| {
            let out = docker_out(args);
            lines(&String::from_utf8_lossy(&out.stdout))
        };
        let mut containers = ids(&["ps", "-aq", "--filter", &label]);
        containers.extend(self.containers.iter().cloned());
        for c in containers {
            let _ = docker_out(&["rm", "-f", "-v", &c]);
        }
        let mut volumes = ids(&["volume", "ls", "-q", "--filter", &label]);
        volumes.extend(self.volumes.iter().cloned());
        for v in volumes {
            let _ = docker_out(&["volume", "rm", &v]);
        }
        for n in ids(&["network", "ls", "-q", "--filter", &label]) {
            let _ = docker_out(&["network", "rm", &n]);
        }
    }
}

/// The stand-in production container and its volume for `tag`, removed by a `Cleanup`
/// made before `start_production` runs.
fn production(tag: &str) -> (String, String) {
    (
        format!("rbkit_prod_{tag}"),
        format!("rbkit_prod_{tag}_data"),
    )
}

/// Starts the stand-in production container on the default bridge: the drill server's
/// listener (so a drill that could reach it would get an answer), with a volume holding one
/// file.
fn start_production(name: &str, volume: &str) {
    docker(&["volume", "create", volume]);
    docker(&[
        "run",
        "-d",
        "--name",
        name,
        "-v",
        &format!("{volume}:/data"),
        IMAGE,
        "sh",
        "-c",
        "echo production > /data/keep && exec python3 -c \"$0\"",
        LISTENER,
    ]);
    wait_until(Duration::from_secs(30), "production is running", || {
        is_running(name) && exec_ok(name, &["cat", "/data/keep"]).is_some()
    });
}

/// `docker exec C CMD...`: its stdout if it exited 0.
fn exec_ok(container: &str, cmd: &[&str]) -> Option<String> {
    let mut args = vec!["exec", container];
    args.extend_from_slice(cmd);
    let out = docker_out(&args);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn label(container: &str, key: &str) -> String {
    inspect(
        container,
        &format!("{{{{index .Config.Labels \"{key}\"}}}}"),
    )
}

/// Names of the objects of `kind` (`ps -a`, `volume ls`, `network ls`) carrying `filter`.
fn listed(kind: &[&str], filter: &str) -> Vec<String> {
    let format = if kind[0] == "ps" {
        "{{.Names}}"
    } else {
        "{{.Name}}"
    };
    let mut args = kind.to_vec();
    args.extend_from_slice(&["--filter", filter, "--format", format]);
    let mut names = lines(&docker(&args));
    names.sort();
    names
}

/// Everything on the engine that carries `filter`: containers, volumes, networks.
fn everything(filter: &str) -> [Vec<String>; 3] {
    [
        listed(&["ps", "-a"], filter),
        listed(&["volume", "ls"], filter),
        listed(&["network", "ls"], filter),
    ]
}

/// A drill's whole life: a private internal network with nothing published, two containers
/// from the image that reach each other by alias and nothing else, a fresh empty writable
/// volume, the labels, refusals of anything production owns, secrets kept out of messages,
/// a teardown that removes it all, a second one that does nothing, and production untouched.
#[test]
fn a_drill_runs_in_a_private_world_and_leaves_nothing() {
    let Some(_turn) =
        docker_turn("docker_create::a_drill_runs_in_a_private_world_and_leaves_nothing")
    else {
        return;
    };
    let pid = std::process::id();
    let project = format!("rbkit_dc_{pid}");
    let (prod, prod_volume) = production(&format!("dc_{pid}"));
    let _cleanup = Cleanup {
        project: project.clone(),
        containers: vec![prod.clone()],
        volumes: vec![prod_volume.clone()],
    };
    start_production(&prod, &prod_volume);
    let prod_started = inspect(&prod, "{{.State.StartedAt}}");
    let prod_id = inspect(&prod, "{{.Id}}");
    let prod_ip = inspect(&prod, "{{.NetworkSettings.IPAddress}}");
    assert!(
        !prod_ip.is_empty(),
        "production has an address on the default bridge"
    );

    let drill = Drill::new(&format!("it{pid}a"), &project).expect("a drill id");
    let net = drill.name("net");
    let data = drill.name("data");
    let server = drill.name("server");
    let client = drill.name("client");
    let rt = runtime();
    let engine = rt.block_on(Engine::connect()).expect("the engine");

    // The network: internal, labelled, and refused when the name exists.
    rt.block_on(engine.create_drill_network(&drill, &net))
        .expect("the drill network");
    assert_eq!(
        inspect(&net, "{{.Internal}}"),
        "true",
        "the network is internal"
    );
    assert_eq!(inspect(&net, "{{.Driver}}"), "bridge");
    assert_eq!(
        inspect(&net, "{{index .Labels \"io.rbk.drill\"}}"),
        drill.id()
    );
    assert_eq!(
        inspect(&net, "{{index .Labels \"io.rbk.project\"}}"),
        project
    );
    let again = rt.block_on(engine.create_drill_network(&drill, &net));
    assert!(
        again.is_err(),
        "a second network of the same name is refused"
    );

    // The volume: fresh, labelled; production's name is refused and its data left alone.
    rt.block_on(engine.create_drill_volume(&drill, &data))
        .expect("the drill volume");
    let refused = rt
        .block_on(engine.create_drill_volume(&drill, &prod_volume))
        .expect_err("production's volume is not a fresh one");
    assert!(
        format!("{refused:#}").contains("already exists"),
        "{refused:#}"
    );
    assert_eq!(
        inspect_volume_label(&prod_volume, "io.rbk.drill"),
        "",
        "production's volume was not relabelled"
    );

    let server_spec = ContainerSpec {
        image: IMAGE.to_string(),
        name: server.clone(),
        env: vec![("RBK_DRILL_SECRET".to_string(), SECRET.to_string())],
        mounts: vec![DrillMount {
            volume: data.clone(),
            target: "/data".to_string(),
            read_only: false,
        }],
        network: Some(net.clone()),
        aliases: vec!["neo4j".to_string()],
        labels: BTreeMap::from([("org.example.role".to_string(), "server".to_string())]),
        entrypoint: None,
        cmd: Some(vec!["python3".into(), "-c".into(), LISTENER.into()]),
        ..Default::default()
    };
    assert!(
        !format!("{server_spec:?}").contains(SECRET),
        "a spec's Debug shows no env value: {server_spec:?}"
    );

    // Refusals, before anything is created: production's volume, a network not the drill's,
    // labels rbk owns, and an image the engine does not have (no pull), none of whose
    // messages may carry the secret.
    let mut bad = server_spec.clone();
    bad.name = drill.name("bad");
    bad.mounts[0].volume = prod_volume.clone();
    let e = rt
        .block_on(engine.create_drill_container(&drill, &bad))
        .expect_err("production's volume is refused");
    assert!(format!("{e:#}").contains("not drill"), "{e:#}");
    let mut bad = server_spec.clone();
    bad.name = drill.name("bad");
    bad.network = Some("bridge".to_string());
    let e = rt
        .block_on(engine.create_drill_container(&drill, &bad))
        .expect_err("the default bridge is refused");
    assert!(format!("{e:#}").contains("not drill"), "{e:#}");
    let mut bad = server_spec.clone();
    bad.name = drill.name("bad");
    bad.labels
        .insert("com.docker.compose.service".into(), "neo4j".into());
    assert!(
        rt.block_on(engine.create_drill_container(&drill, &bad))
            .is_err(),
        "Compose labels are refused"
    );
    let mut bad = server_spec.clone();
    bad.name = drill.name("bad");
    bad.image = "rbk-test/no-such-image:0".to_string();
    let e = rt
        .block_on(engine.create_drill_container(&drill, &bad))
        .expect_err("an image the engine does not have");
    assert!(!format!("{e:#} {e:?}").contains(SECRET), "{e:#}");
    assert!(
        listed(&["ps", "-a"], &format!("name={}", drill.name("bad"))).is_empty(),
        "no refused container was left"
    );

    // Two containers from the image on the drill network.
    let info = rt
        .block_on(engine.create_drill_container(&drill, &server_spec))
        .expect("the server container");
    assert!(info.running, "the server runs");
    assert_eq!(info.name, server);
    let client_spec = ContainerSpec {
        image: IMAGE.to_string(),
        name: client.clone(),
        network: Some(net.clone()),
        aliases: vec!["rushdb".to_string()],
        cmd: Some(vec!["sleep".into(), "infinity".into()]),
        ..Default::default()
    };
    rt.block_on(engine.create_drill_container(&drill, &client_spec))
        .expect("the client container");

    for c in [&server, &client] {
        assert_eq!(label(c, "io.rbk.drill"), drill.id(), "{c}");
        assert_eq!(label(c, "io.rbk.project"), project, "{c}");
        assert_eq!(label(c, "io.rbk.oneoff"), "", "{c} is no one-off");
        assert_eq!(label(c, "com.docker.compose.project"), "", "{c}");
        assert_eq!(inspect(c, "{{.HostConfig.NetworkMode}}"), net, "{c}");
        assert_eq!(
            inspect(c, "{{len .NetworkSettings.Networks}}"),
            "1",
            "{c} is on the drill network only"
        );
        assert_eq!(docker(&["port", c]).trim(), "", "{c} publishes no port");
        let bindings = inspect(c, "{{json .HostConfig.PortBindings}}");
        assert!(
            bindings == "{}" || bindings == "null",
            "{c} binds no host port: {bindings}"
        );
    }
    assert_eq!(label(&server, "org.example.role"), "server");
    assert_eq!(
        exec_ok(&server, &["printenv", "RBK_DRILL_SECRET"]).as_deref(),
        Some(SECRET),
        "the environment reached the container"
    );

    // They reach each other by alias (and by name); the client reaches neither production
    // nor anything outside: no route leaves an internal network.
    let resolved = exec_ok(&client, &["getent", "hosts", "neo4j"]).unwrap_or_default();
    assert!(!resolved.is_empty(), "the alias neo4j resolves");
    assert!(
        exec_ok(&server, &["getent", "hosts", "rushdb"]).is_some(),
        "the alias rushdb resolves"
    );
    let mut said = String::new();
    wait_until(Duration::from_secs(20), "the client reaches neo4j", || {
        said = exec_ok(&client, &["python3", "-c", CLIENT, "neo4j"]).unwrap_or_default();
        !said.is_empty()
    });
    assert_eq!(said, "hello on 7687");
    assert!(
        exec_ok(&client, &["python3", "-c", CLIENT, &server]).is_some(),
        "the server answers to its name too"
    );
    // Production answers from the default bridge (so the refusal below means something),
    // never from the drill network.
    let out = docker_out(&["run", "--rm", IMAGE, "python3", "-c", CLIENT, &prod_ip]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "hello on 7687",
        "production answers on the default bridge"
    );
    let out = docker_out(&["exec", &client, "python3", "-c", CLIENT, &prod_ip]);
    assert!(
        !out.status.success(),
        "production's address is out of the drill's reach: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        exec_ok(&client, &["getent", "hosts", &prod]).is_none(),
        "production's name does not resolve in the drill"
    );

    // The fresh volume is empty and writable.
    assert_eq!(
        exec_ok(&server, &["ls", "-A", "/data"]).as_deref(),
        Some(""),
        "a fresh volume is empty"
    );
    assert_eq!(
        exec_ok(
            &server,
            &["sh", "-c", "echo drill > /data/probe && cat /data/probe"]
        )
        .as_deref(),
        Some("drill"),
        "a fresh volume is writable"
    );

    // The leftovers a later run would see are exactly this drill's objects.
    let found = rt
        .block_on(engine.drill_leftovers(&project))
        .expect("the leftovers");
    assert_eq!(found.len(), 1, "{found:?}");
    let mut containers = found[0].containers.clone();
    containers.sort();
    assert_eq!(found[0].drill, drill);
    assert_eq!(containers, vec![client.clone(), server.clone()]);
    assert_eq!(found[0].volumes, vec![data.clone()]);
    assert_eq!(found[0].networks, vec![net.clone()]);

    // Teardown removes it all; a second teardown finds nothing and succeeds.
    let done = rt.block_on(engine.remove_drill(&drill)).expect("teardown");
    assert_eq!(
        done,
        Teardown {
            containers: 2,
            volumes: 1,
            networks: 1
        }
    );
    let drill_label = format!("label=io.rbk.drill={}", drill.id());
    assert_eq!(everything(&drill_label), NOTHING);
    let again = rt
        .block_on(engine.remove_drill(&drill))
        .expect("a second teardown");
    assert_eq!(again, Teardown::default(), "a second teardown is a no-op");
    assert!(
        rt.block_on(engine.drill_leftovers(&project))
            .expect("the leftovers")
            .is_empty()
    );

    // Production never noticed.
    assert!(is_running(&prod), "production still runs");
    assert_eq!(inspect(&prod, "{{.Id}}"), prod_id);
    assert_eq!(
        inspect(&prod, "{{.State.StartedAt}}"),
        prod_started,
        "production was not restarted"
    );
    assert_eq!(
        exec_ok(&prod, &["cat", "/data/keep"]).as_deref(),
        Some("production")
    );
}

fn inspect_volume_label(volume: &str, key: &str) -> String {
    docker(&[
        "volume",
        "inspect",
        "-f",
        &format!("{{{{index .Labels \"{key}\"}}}}"),
        volume,
    ])
    .trim()
    .to_string()
}

/// A drill whose rbk died before its teardown: its runtime and engine are dropped with the
/// containers running. A later run finds it by its labels alone, removes it even though
/// some of it vanished meanwhile, and leaves another project's drill and production alone.
#[test]
fn a_crashed_drills_leftovers_are_found_and_removed() {
    let Some(_turn) =
        docker_turn("docker_create::a_crashed_drills_leftovers_are_found_and_removed")
    else {
        return;
    };
    let pid = std::process::id();
    let project = format!("rbkit_dcl_{pid}");
    let other_project = format!("rbkit_dco_{pid}");
    let (prod, prod_volume) = production(&format!("dcl_{pid}"));
    let _cleanup = Cleanup {
        project: project.clone(),
        containers: vec![prod.clone()],
        volumes: vec![prod_volume.clone()],
    };
    let _cleanup_other = Cleanup {
        project: other_project.clone(),
        containers: Vec::new(),
        volumes: Vec::new(),
    };
    start_production(&prod, &prod_volume);
    let prod_started = inspect(&prod, "{{.State.StartedAt}}");

    // Ids and projects end up in label filters and names: empty or odd ones are refused.
    for (id, p) in [
        ("", project.as_str()),
        ("a b", &project),
        ("x", ""),
        ("x", "p=q"),
    ] {
        assert!(Drill::new(id, p).is_err(), "Drill::new({id:?}, {p:?})");
    }
    let crashed = Drill::new(&format!("it{pid}c"), &project).expect("a drill id");
    let other = Drill::new(&format!("it{pid}o"), &other_project).expect("a drill id");
    // The run that "crashes": everything created, nothing torn down, all of it forgotten.
    {
        let rt = runtime();
        let engine = rt.block_on(Engine::connect()).expect("the engine");
        for drill in [&crashed, &other] {
            let net = drill.name("net");
            rt.block_on(engine.create_drill_network(drill, &net))
                .expect("network");
            for v in ["data", "logs"] {
                rt.block_on(engine.create_drill_volume(drill, &drill.name(v)))
                    .expect("volume");
            }
            for c in ["neo4j", "postgres"] {
                let spec = ContainerSpec {
                    image: IMAGE.to_string(),
                    name: drill.name(c),
                    mounts: vec![DrillMount {
                        volume: drill.name("data"),
                        target: "/data".to_string(),
                        read_only: c == "postgres",
                    }],
                    network: Some(net.clone()),
                    aliases: vec![c.to_string()],
                    cmd: Some(vec!["sleep".into(), "infinity".into()]),
                    ..Default::default()
                };
                rt.block_on(engine.create_drill_container(drill, &spec))
                    .expect("container");
            }
        }
    }

    // A later run, knowing nothing but the project.
    let rt = runtime();
    let engine = rt.block_on(Engine::connect()).expect("the engine");
    let found = rt
        .block_on(engine.drill_leftovers(&project))
        .expect("the leftovers");
    assert_eq!(found.len(), 1, "only this project's drill: {found:?}");
    let left = &found[0];
    assert_eq!(left.drill, crashed);
    let sorted = |v: &[String]| {
        let mut v = v.to_vec();
        v.sort();
        v
    };
    assert_eq!(
        sorted(&left.containers),
        vec![crashed.name("neo4j"), crashed.name("postgres")]
    );
    assert_eq!(
        sorted(&left.volumes),
        vec![crashed.name("data"), crashed.name("logs")]
    );
    assert_eq!(left.networks, vec![crashed.name("net")]);

    // Part of it vanished meanwhile (someone ran docker rm): the teardown takes the rest.
    docker(&["rm", "-f", &crashed.name("postgres")]);
    docker(&["volume", "rm", &crashed.name("logs")]);
    let done = rt
        .block_on(engine.remove_drill(&left.drill))
        .expect("the teardown of the leftovers");
    assert_eq!(
        done,
        Teardown {
            containers: 1,
            volumes: 1,
            networks: 1
        }
    );
    assert_eq!(
        everything(&format!("label=io.rbk.drill={}", crashed.id())),
        NOTHING
    );
    assert!(
        rt.block_on(engine.drill_leftovers(&project))
            .expect("the leftovers")
            .is_empty()
    );

    // The other project's drill is intact, and goes only when its own teardown runs.
    let [c, v, n] = everything(&format!("label=io.rbk.drill={}", other.id()));
    assert_eq!((c.len(), v.len(), n.len()), (2, 2, 1));
    assert!(is_running(&other.name("neo4j")));
    let done = rt
        .block_on(engine.remove_drill(&other))
        .expect("the other teardown");
    assert_eq!(
        done,
        Teardown {
            containers: 2,
            volumes: 2,
            networks: 1
        }
    );

    assert!(is_running(&prod), "production still runs");
    assert_eq!(
        inspect(&prod, "{{.State.StartedAt}}"),
        prod_started,
        "production was not restarted"
    );
}
