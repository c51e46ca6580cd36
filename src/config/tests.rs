//! How the command line and environment parse into settings.

use super::*;

#[test]
fn a_bucket_takes_the_place_of_the_artifact_directory() {
    let cli = Cli::try_parse_from([
        "control-plane",
        "worker",
        "--artifact-dir",
        "/var/lib/cp/artifacts",
        "--artifact-store",
        "s3://cp-artifacts/prod",
    ])
    .expect("parses");
    assert_eq!(
        cli.settings.artifact_location().to_string(),
        "s3://cp-artifacts/prod"
    );
    let cli =
        Cli::try_parse_from(["control-plane", "worker", "--data-dir", "/srv/cp"]).expect("parses");
    assert_eq!(
        cli.settings.artifact_location(),
        ArtifactLocation::Dir(PathBuf::from("/srv/cp/artifacts"))
    );
    assert_eq!(cli.settings.retention(), Retention::DEFAULT);
}

#[test]
fn durations_parse_the_usual_way() {
    assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
    assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
    assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
    assert!(parse_duration("soon").is_err());
}

#[test]
fn defaults_and_aliases() {
    let cli = Cli::try_parse_from(["control-plane", "serve"]).expect("parses");
    assert_eq!(
        cli.settings.bind_for(&cli.command).to_string(),
        "0.0.0.0:8080"
    );
    assert_eq!(
        cli.settings.bind_for(&Command::Dev).to_string(),
        "127.0.0.1:8080"
    );
    assert_eq!(cli.settings.queue_prefix, "cp");
    assert!(!cli.settings.allow_private_targets);
    assert_eq!(cli.settings.shutdown_grace, Duration::from_secs(30));
    assert!(matches!(cli.command, Command::Serve(args) if args.migrate()));

    let cli =
        Cli::try_parse_from(["control-plane", "serve", "--skip-init-models"]).expect("parses");
    assert!(matches!(cli.command, Command::Serve(args) if !args.migrate()));

    let cli = Cli::try_parse_from(["control-plane", "worker", "--allow-private-targets"])
        .expect("parses");
    assert!(cli.settings.allow_private_targets);
}

#[test]
fn malformed_settings_are_refused() {
    for args in [
        ["control-plane", "serve", "--shutdown-grace", "soon"],
        ["control-plane", "serve", "--bind", "nowhere"],
        ["control-plane", "serve", "--queue-prefix", "{bad}"],
        ["control-plane", "serve", "--worker-concurrency", "0"],
        ["control-plane", "serve", "--log-format", "xml"],
    ] {
        assert!(
            Cli::try_parse_from(args).is_err(),
            "{args:?} should be refused"
        );
    }
}

#[test]
fn missing_urls_are_named() {
    let cli = Cli::try_parse_from(["control-plane", "worker"]).expect("parses");
    let settings = Settings {
        database_url: None,
        redis_url: Some("  ".into()),
        ..cli.settings
    };
    let db = settings.require_database_url().expect_err("missing");
    assert!(db.to_string().starts_with("DATABASE_URL is not set"));
    let redis = settings.require_redis_url().expect_err("blank");
    assert!(redis.to_string().starts_with("REDIS_URL is not set"));
}
