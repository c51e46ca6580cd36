//! The browser processes themselves: finding the executable, launching it so that it dies
//! with this process, and finding (and killing) the processes of a profile directory.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chromiumoxide::{Browser, BrowserConfig};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// The executables looked for on `PATH` when `CHROME_PATH` is not set.
pub const CHROME_NAMES: &[&str] = &[
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
];

/// How to install a browser, for error messages.
pub const INSTALL_HINT: &str = "install Chromium (Debian/Ubuntu: `apt-get install -y chromium`) or set CHROME_PATH to a Chrome or Chromium executable";

/// Finds the browser: `configured` if given (it must exist), else the first of
/// [`CHROME_NAMES`] on `PATH`.
pub fn find_chrome(configured: Option<&Path>) -> Result<Option<PathBuf>, String> {
    if let Some(path) = configured {
        return if path.is_file() {
            Ok(Some(path.to_path_buf()))
        } else {
            Err(format!(
                "CHROME_PATH {} is not a file; {INSTALL_HINT}",
                path.display()
            ))
        };
    }
    let Some(paths) = std::env::var_os("PATH") else {
        return Ok(None);
    };
    for dir in std::env::split_paths(&paths) {
        for name in CHROME_NAMES {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Ok(Some(candidate));
            }
        }
    }
    Ok(None)
}

/// Kills every process whose command line names `user_data_dir` (Chromium's helpers carry it).
pub(super) fn kill_leftovers(user_data_dir: &Path) {
    let needle = format!("--user-data-dir={}", user_data_dir.display());
    for pid in processes_with_arg(&needle) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// Writes a launcher script into `profile` that runs `executable` under
/// `setpriv --pdeathsig KILL`, so the browser dies with the process that started it.
pub(super) fn death_bound_launcher(executable: &Path, profile: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let setpriv = ["/usr/bin/setpriv", "/bin/setpriv"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.is_file())?;
    let quoted = executable.display().to_string().replace('\'', "'\\''");
    let script = format!(
        "#!/bin/sh\nexec {} --pdeathsig KILL '{quoted}' \"$@\"\n",
        setpriv.display()
    );
    let path = profile.join("launch-chromium.sh");
    std::fs::write(&path, script).ok()?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).ok()?;
    Some(path)
}

/// Kills browsers left by processes of this host that died without closing them, and
/// removes their profile directories.
pub fn sweep_orphans() {
    let prefix = std::env::temp_dir().join("control-plane-chromium-");
    let prefix = prefix.display().to_string();
    let owner_of =
        |path: &str| -> Option<u32> { path.strip_prefix(&prefix)?.split('-').next()?.parse().ok() };
    for pid in processes_with_arg(&format!("--user-data-dir={prefix}")) {
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let owner = cmdline
            .split(|b| *b == 0)
            .filter_map(|arg| std::str::from_utf8(arg).ok())
            .find_map(|arg| owner_of(arg.strip_prefix("--user-data-dir=")?));
        if owner.is_some_and(|owner| !process_alive(owner)) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
    if let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) {
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path().display().to_string();
            if owner_of(&path).is_some_and(|owner| !process_alive(owner)) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// Whether a process exists and is not a zombie.
pub(super) fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Process ids whose command line contains `needle` as one argument or argument prefix.
pub fn processes_with_arg(needle: &str) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
                cmdline
                    .split(|b| *b == 0)
                    .any(|arg| arg.starts_with(needle.as_bytes()))
            })
        })
        .collect()
}

/// Chromium's command line (without leading dashes; see STACK.md). `headless` is added by the
/// launcher.
pub const LAUNCH_ARGS: &[&str] = &[
    "disable-gpu",
    "disable-quic",
    "no-first-run",
    "no-default-browser-check",
    "disable-background-networking",
    "dns-prefetch-disable",
    "no-pings",
    // Traffic outside a job's context (there should be none) goes to a port nothing listens
    // on: each job's context has its own proxy, the egress, that checks every address.
    "proxy-server=http://127.0.0.1:9",
    "proxy-bypass-list=<-loopback>",
    "disable-component-update",
    "disable-sync",
    "disable-breakpad",
    "disable-crash-reporter",
    "disable-default-apps",
    "disable-extensions",
    "disable-client-side-phishing-detection",
    "disable-hang-monitor",
    "disable-prompt-on-repost",
    "disable-background-timer-throttling",
    "disable-backgrounding-occluded-windows",
    "disable-renderer-backgrounding",
    "disable-ipc-flooding-protection",
    "metrics-recording-only",
    "password-store=basic",
    "use-mock-keychain",
    "force-color-profile=srgb",
    "hide-scrollbars",
    "mute-audio",
    "lang=en-US",
    "window-size=1920,1080",
    // One renderer per page, iframes included, so every frame gets the same evasions.
    "disable-features=Translate,OptimizationHints,MediaRouter,IsolateOrigins,site-per-process",
    // navigator.webdriver stays false everywhere (workers too); `vanilla` turns it back on
    // per page with Emulation.setAutomationOverride.
    "disable-blink-features=AutomationControlled",
];

/// How long a browser may take to start.
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(30);

/// A started browser, the task that drives its connection, and a token cancelled when it dies.
pub(super) struct Launched {
    pub browser: Browser,
    pub handler: tokio::task::JoinHandle<()>,
    pub died: CancellationToken,
}

/// Whether the last sandboxed launch worked (a kernel that refuses the sandbox once refuses it
/// every time: later launches go straight without it).
static SANDBOX_WORKS: AtomicBool = AtomicBool::new(true);

/// Whether Chromium runs with its sandbox here: asked for, and not refused so far (after the
/// first launch, whether it actually does).
pub fn sandboxed() -> bool {
    sandbox_allowed()
}

/// Whether to ask for Chromium's sandbox: not as root (Chromium refuses to start sandboxed as
/// root), nor once it failed to start here.
fn sandbox_allowed() -> bool {
    !nix::unistd::geteuid().is_root() && SANDBOX_WORKS.load(Ordering::SeqCst)
}

/// Launches once: through the death-bound launcher when there is one, else straight.
async fn start(
    executable: &Path,
    user_data_dir: &Path,
    sandbox: bool,
) -> Result<(Browser, chromiumoxide::Handler), String> {
    let config = |executable: &Path| {
        let mut builder = BrowserConfig::builder()
            .chrome_executable(executable)
            .user_data_dir(user_data_dir)
            .viewport(None)
            .launch_timeout(LAUNCH_TIMEOUT)
            .request_timeout(Duration::from_secs(60))
            .disable_default_args()
            .args(LAUNCH_ARGS.iter().copied());
        if !sandbox {
            builder = builder.no_sandbox();
        }
        builder.build()
    };
    let launched = match death_bound_launcher(executable, user_data_dir) {
        Some(launcher) => match Browser::launch(config(&launcher)?).await {
            Ok(launched) => Ok(launched),
            Err(e) => {
                debug!(error = %e, "launching through setpriv failed; launching directly");
                Browser::launch(config(executable)?).await
            }
        },
        None => Browser::launch(config(executable)?).await,
    };
    launched.map_err(|e| e.to_string())
}

/// Starts `executable` with a fresh profile in `user_data_dir`: through a launcher that makes
/// the kernel kill it if this process dies (even by SIGKILL), straight when there is no such
/// launcher or it cannot run.
pub(super) async fn launch(executable: &Path, user_data_dir: &Path) -> Result<Launched, String> {
    let _ = std::fs::remove_dir_all(user_data_dir);
    std::fs::create_dir_all(user_data_dir).map_err(|e| {
        format!(
            "cannot create its profile directory {}: {e}",
            user_data_dir.display()
        )
    })?;
    let sandboxed = sandbox_allowed();
    let mut launched = start(executable, user_data_dir, sandboxed).await;
    if sandboxed && let Err(e) = &launched {
        warn!(
            error = %e,
            "Chromium's sandbox cannot start here (the kernel does not allow unprivileged user \
             namespaces, or a seccomp profile forbids them); running Chromium without it"
        );
        SANDBOX_WORKS.store(false, Ordering::SeqCst);
        launched = start(executable, user_data_dir, false).await;
    }
    let (mut browser, handler) = launched.map_err(|e| {
        let _ = std::fs::remove_dir_all(user_data_dir);
        e.to_string()
    })?;
    let died = CancellationToken::new();
    let pid = browser.get_mut_child().and_then(|child| child.inner.id());
    let handler = tokio::spawn(watch(handler, pid, died.clone()));
    Ok(Launched {
        browser,
        handler,
        died,
    })
}

/// Drives the browser's connection for as long as it lives (its errors are logged, never
/// fatal), and cancels `died` when the connection breaks or the process exits, whichever
/// shows first.
async fn watch(mut handler: chromiumoxide::Handler, pid: Option<u32>, died: CancellationToken) {
    let connection = async {
        while let Some(event) = handler.next().await {
            match event {
                Err(chromiumoxide::error::CdpError::Ws(e)) => {
                    warn!(error = %e, "lost the connection to the browser");
                    return;
                }
                Err(e) => debug!(error = %e, "browser connection event error"),
                Ok(()) => {}
            }
        }
    };
    let exited = async {
        let Some(pid) = pid else {
            return std::future::pending().await;
        };
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if !process_alive(pid) {
                warn!(pid, "the browser process exited");
                return;
            }
        }
    };
    tokio::select! {
        () = connection => {}
        () = exited => {}
    }
    died.cancel();
}
