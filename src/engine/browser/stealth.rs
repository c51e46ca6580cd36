//! The `stealth` strategy's evasions: a user agent and client hints without headless markers,
//! and a script run in every frame before any page script.

/// What both scripts start with: helpers whose replacements look native (their source reads
/// `[native code]`, they have the native's name and length, and, being methods or accessors,
/// no `prototype` of their own), and the persona's WebGL vendor and renderer.
const NATIVE_LOOKING_JS: &str = r#"
  const native = new WeakMap();
  const toString = Function.prototype.toString;
  const method = (name, length, impl) => {
    const fn = { [name](...args) { return impl.apply(this, args); } }[name];
    Object.defineProperty(fn, 'length', { value: length, configurable: true });
    native.set(fn, `function ${name}() { [native code] }`);
    return fn;
  };
  Function.prototype.toString = method('toString', 0, function () {
    return native.has(this) ? native.get(this) : toString.call(this);
  });
  const accessor = (prop, get) => {
    const fn = Object.getOwnPropertyDescriptor({ get [prop]() { return get.call(this); } }, prop).get;
    native.set(fn, `function get ${prop}() { [native code] }`);
    return fn;
  };
  const getter = (obj, prop, value) => {
    const get = accessor(prop, typeof value === 'function' ? value : () => value);
    try { Object.defineProperty(obj, prop, { get, configurable: true, enumerable: true }); } catch (_) {}
  };
  const reportWebgl = () => {
    for (const context of [self.WebGLRenderingContext, self.WebGL2RenderingContext].filter(Boolean)) {
      const getParameter = context.prototype.getParameter;
      Object.defineProperty(context.prototype, 'getParameter', {
        value: method('getParameter', 1, function (p) {
          if (p === 37445) return persona.webglVendor;
          if (p === 37446) return persona.webglRenderer;
          return getParameter.call(this, p);
        }),
        configurable: true, writable: true, enumerable: true,
      });
    }
  };
"#;

/// The frame evasions, after [`NATIVE_LOOKING_JS`].
const FRAME_EVASIONS_JS: &str = r#"
  // navigator.webdriver: false, as in a browser nobody drives.
  getter(Navigator.prototype, 'webdriver', false);

  // Languages follow the locale (never empty).
  if (!navigator.languages || navigator.languages.length === 0) {
    getter(Navigator.prototype, 'languages', Object.freeze(['en-US', 'en']));
  }

  // Notification permission: a headless browser says "denied" where a fresh profile says "default".
  if (window.Notification && Notification.permission === 'denied') {
    try {
      Object.defineProperty(Notification, 'permission', {
        get: accessor('permission', () => 'default'), configurable: true, enumerable: true,
      });
    } catch (_) {}
  }
  if (navigator.permissions && navigator.permissions.query) {
    const query = navigator.permissions.query.bind(navigator.permissions);
    const patched = method('query', 1, function (parameters) {
      if (parameters && parameters.name === 'notifications') {
        const state = window.Notification ? (Notification.permission === 'granted' ? 'granted' : 'prompt') : 'prompt';
        return Promise.resolve(Object.setPrototypeOf({ state, name: 'notifications', onchange: null }, PermissionStatus.prototype));
      }
      return query(parameters);
    });
    try { Object.defineProperty(Permissions.prototype, 'query', { value: patched, configurable: true, writable: true }); } catch (_) {}
  }

  // Plugins and mime types: Chromium's built-in PDF viewer, as a desktop browser lists it.
  if (navigator.plugins && navigator.plugins.length === 0) {
    getter(Navigator.prototype, 'pdfViewerEnabled', true);
  }

  // WebGL: a common desktop GPU instead of the software renderer.
  reportWebgl();

  // The window around the page: as wide as the viewport and taller by the browser's bars
  // (headless reports a fixed 800 × 600 window, smaller than the viewport it holds).
  getter(window, 'outerWidth', () => window.innerWidth);
  getter(window, 'outerHeight', () => window.innerHeight + 85); // persona::WINDOW_BARS

  // chrome.runtime, as in a desktop Chrome.
  if (!window.chrome) {
    Object.defineProperty(window, 'chrome', { value: {}, configurable: true, writable: true, enumerable: true });
  }
  if (!window.chrome.runtime) {
    window.chrome.runtime = {
      OnInstalledReason: { CHROME_UPDATE: 'chrome_update', INSTALL: 'install', SHARED_MODULE_UPDATE: 'shared_module_update', UPDATE: 'update' },
      PlatformOs: { ANDROID: 'android', CROS: 'cros', LINUX: 'linux', MAC: 'mac', OPENBSD: 'openbsd', WIN: 'win' },
      connect: method('connect', 0, () => { throw new TypeError('Error in invocation of runtime.connect'); }),
      sendMessage: method('sendMessage', 0, () => { throw new TypeError('Error in invocation of runtime.sendMessage'); }),
      id: undefined,
    };
  }
"#;

/// The persona told to a worker's scope before its own code runs (workers have no frames,
/// so the frame evasions never reach them): its user agent, languages and client hints, and
/// the same WebGL as the frames say. After [`NATIVE_LOOKING_JS`].
const WORKER_EVASIONS_JS: &str = r#"
  const nav = self.WorkerNavigator && WorkerNavigator.prototype;
  if (nav) {
    getter(nav, 'userAgent', persona.userAgent);
    getter(nav, 'appVersion', persona.userAgent.replace(/^Mozilla\//, ''));
    getter(nav, 'language', persona.languages[0]);
    getter(nav, 'languages', Object.freeze(persona.languages.slice()));
  }
  if (self.NavigatorUAData) {
    const brands = persona.brands.map(([brand, version]) => ({ brand, version }));
    getter(NavigatorUAData.prototype, 'brands', Object.freeze(brands));
  }
  reportWebgl();
"#;

/// The WebGL vendor and renderer `stealth` reports everywhere: a common desktop GPU instead
/// of the software renderer.
const WEBGL: (&str, &str) = ("Intel Inc.", "Intel Iris OpenGL Engine");

/// `body` run with `persona` in scope, after the native-looking helpers.
fn script(body: &str, persona: serde_json::Value) -> String {
    format!("((persona) => {{{NATIVE_LOOKING_JS}{body}}})({persona})")
}

/// Evasions injected with `Page.addScriptToEvaluateOnNewDocument` (every frame, before page
/// scripts), made once.
pub fn frame_evasions() -> &'static str {
    static SCRIPT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let persona = serde_json::json!({"webglVendor": WEBGL.0, "webglRenderer": WEBGL.1});
        script(FRAME_EVASIONS_JS, persona)
    });
    &SCRIPT
}

/// The worker evasions for a page that says `user_agent` and `languages` (`fr-FR,fr`).
pub fn worker_evasions(user_agent: &str, languages: &str) -> String {
    let persona = serde_json::json!({
        "userAgent": user_agent,
        "brands": brands_of(user_agent),
        "languages": languages.split(',').collect::<Vec<_>>(),
        "webglVendor": WEBGL.0,
        "webglRenderer": WEBGL.1,
    });
    script(WORKER_EVASIONS_JS, persona)
}

/// The browser's user agent with its headless markers removed.
pub fn clean_user_agent(user_agent: &str) -> String {
    user_agent.replace("HeadlessChrome", "Chrome")
}

/// The major version in a user agent (`Chrome/156.0.0.0` → `156`).
pub fn major_version(user_agent: &str) -> Option<u32> {
    let at = user_agent.find("Chrome/")? + "Chrome/".len();
    let major: String = user_agent[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    major.parse().ok()
}

/// The client-hint brands of the Chromium a user agent names (156, this project's, when it
/// names none).
pub fn brands_of(user_agent: &str) -> Vec<(String, String)> {
    chromium_brands(major_version(user_agent).unwrap_or(156))
}

/// The client-hint brands Chromium of `major` reports by itself (as its workers, which no
/// override reaches, report them): Chromium and a GREASE brand, placed and spelled from
/// the major version as Chromium's `GenerateBrandVersionList` does.
pub fn chromium_brands(major: u32) -> Vec<(String, String)> {
    const CHARS: [&str; 11] = [" ", "(", ":", "-", ".", "/", ")", ";", "=", "?", "_"];
    const VERSIONS: [&str; 3] = ["8", "99", "24"];
    let seed = major as usize;
    let grease = (
        format!("Not{}A{}Brand", CHARS[seed % 11], CHARS[(seed + 1) % 11]),
        VERSIONS[seed % 3].to_owned(),
    );
    let chromium = ("Chromium".to_owned(), major.to_string());
    if seed.is_multiple_of(2) {
        vec![grease, chromium]
    } else {
        vec![chromium, grease]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headless_markers_leave_the_user_agent() {
        let ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36";
        let clean = clean_user_agent(ua);
        assert!(!clean.contains("Headless"));
        assert_eq!(major_version(&clean), Some(156));
    }

    #[test]
    fn brands_are_spelled_as_chromium_spells_them() {
        // As Chromium 156 reports them in a worker no override reaches.
        let brands = chromium_brands(156);
        assert_eq!(
            brands,
            vec![
                ("Not:A-Brand".to_owned(), "8".to_owned()),
                ("Chromium".to_owned(), "156".to_owned())
            ]
        );
        assert_eq!(chromium_brands(157)[0].0, "Chromium");
    }

    #[test]
    fn frames_and_workers_report_one_webgl() {
        let worker = worker_evasions("Chrome/156.0.0.0", "en-US,en");
        for script in [frame_evasions(), worker.as_str()] {
            assert!(script.contains(WEBGL.0) && script.contains(WEBGL.1));
            assert!(script.contains("reportWebgl();"));
        }
    }
}
