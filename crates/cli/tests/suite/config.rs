//! Model settings come from the config file, then the environment, then flags, each overriding
//! the one before; the API key reaches the server as a bearer token.

use super::harness::{World, finish, run};

fn world_with_config(config: &str) -> World {
    let world = World::new(&[("a.txt", "a\n")]).with_script(vec![finish("ok")]);
    std::fs::create_dir_all(world.home()).unwrap();
    let config = config.replace("BASE_URL", &world.server().base_url());
    std::fs::write(world.home().join("config.toml"), config).unwrap();
    world
}

/// Runs a task with the harness's model variables removed, plus `env` and `flags`.
fn run_with(world: &World, env: &[(&str, &str)], flags: &[&str]) -> super::harness::Run {
    let mut command = world.command();
    command
        .env_remove("NIGHTSHIFT_BASE_URL")
        .env_remove("NIGHTSHIFT_MODEL");
    command.envs(env.iter().copied());
    command
        .args(["run", "--json", "--repo"])
        .arg(&world.repo)
        .args(flags)
        .arg("Say ok");
    run(command)
}

fn model_sent(world: &World) -> String {
    world.server().requests()[0]["model"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn authorization_sent(world: &World) -> Option<String> {
    world.server().request_headers()[0]
        .iter()
        .find(|(name, _)| name == "authorization")
        .map(|(_, value)| value.clone())
}

const CONFIG: &str = "[model]\nbase_url = \"BASE_URL\"\nmodel = \"from-config\"\napi_key_env = \"MY_PROVIDER_KEY\"\n";

#[test]
fn the_config_file_alone_is_enough() {
    let world = world_with_config(CONFIG);
    let out = run_with(&world, &[("MY_PROVIDER_KEY", "key-from-config-env")], &[]);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_eq!(model_sent(&world), "from-config");
    assert_eq!(
        authorization_sent(&world).as_deref(),
        Some("Bearer key-from-config-env")
    );
}

#[test]
fn the_environment_overrides_the_config_file() {
    let world = world_with_config(CONFIG);
    let env = [
        ("NIGHTSHIFT_MODEL", "from-env"),
        ("NIGHTSHIFT_API_KEY", "key-from-env"),
    ];
    let out = run_with(&world, &env, &[]);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_eq!(model_sent(&world), "from-env");
    // MY_PROVIDER_KEY is unset, and that is fine: the config's key is only the fallback.
    assert_eq!(
        authorization_sent(&world).as_deref(),
        Some("Bearer key-from-env")
    );
}

#[test]
fn flags_override_the_environment() {
    let world = world_with_config(CONFIG);
    let env = [
        ("NIGHTSHIFT_MODEL", "from-env"),
        ("NIGHTSHIFT_API_KEY", "key-from-env"),
    ];
    let out = run_with(
        &world,
        &env,
        &["--model", "from-flag", "--api-key", "key-from-flag"],
    );
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_eq!(model_sent(&world), "from-flag");
    assert_eq!(
        authorization_sent(&world).as_deref(),
        Some("Bearer key-from-flag")
    );
}

#[test]
fn a_missing_api_key_variable_is_named() {
    let world = world_with_config(CONFIG);
    let out = run_with(&world, &[], &[]);
    assert_eq!(out.code(), 2, "{}", out.stderr);
    assert!(out.stderr.contains("MY_PROVIDER_KEY"), "{}", out.stderr);
    assert!(out.stderr.contains("hint:"), "{}", out.stderr);
}

#[test]
fn the_api_key_never_appears_in_events_or_output() {
    let world = world_with_config(CONFIG);
    let out = run_with(&world, &[("NIGHTSHIFT_API_KEY", "sk-very-secret-key")], &[]);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(!out.stdout.contains("sk-very-secret-key"));
    assert!(!out.stderr.contains("sk-very-secret-key"));
    // The database and its write-ahead log (where recent writes live) hold no trace of it.
    let needle = b"sk-very-secret-key";
    let mut checked = 0;
    for entry in std::fs::read_dir(world.home()).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("nightshift.db")
        {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{}",
                path.display()
            );
            checked += 1;
        }
    }
    assert!(checked >= 1);
}
