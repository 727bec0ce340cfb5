//! The HTML report (`kestrel train` / `kestrel report`) in a real browser: the shared
//! `lenet` fixture's report, with an int8 export measured, is opened in headless Chromium
//! (Debian's `chromium`, installed by `scripts/install-deps.sh`), which must log no console
//! message, and whose rendered DOM must carry the page script's verdict that the three
//! plots and the filter grid decoded to non-blank pictures. The same checks run on a
//! sabotaged copy (a broken picture, a script error) and must fail there, so they can.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kestrel_tests::{tempfile_dir, trained_lenet};
use kestrel_trainer::export::{export, Quant};
use kestrel_trainer::{checkpoint, report};

const CHROMIUM: &str = "chromium";
const TIMEOUT: Duration = Duration::from_secs(90);

/// What headless Chromium made of a page.
struct Rendered {
    /// The DOM after the load event (`--dump-dom`).
    dom: String,
    /// Console messages (Chromium logs them to stderr as `…:CONSOLE(…)] "…"` lines).
    console: Vec<String>,
}

impl Rendered {
    /// The value of `<body>`'s attribute `name`.
    fn body_attr(&self, name: &str) -> Option<&str> {
        let start = self.dom.find("<body")?;
        let tag = &self.dom[start..start + self.dom[start..].find('>')?];
        let key = format!(" {name}=\"");
        let at = tag.find(&key)? + key.len();
        Some(&tag[at..at + tag[at..].find('"')?])
    }
}

fn render(page: &Path) -> Rendered {
    let profile = tempfile_dir().join(format!(
        "chromium-profile-{}",
        page.file_stem().unwrap().to_string_lossy()
    ));
    let spawned = Command::new(CHROMIUM)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("file://{}", page.canonicalize().unwrap().display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => panic!(
            "cannot run `{CHROMIUM}` ({e}): the report test needs headless Chromium; run \
             scripts/install-deps.sh (it installs Debian's `chromium` package)"
        ),
    };
    let pipe = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            r.read_to_string(&mut s).expect("read chromium output");
            s
        })
    };
    let out = pipe(Box::new(child.stdout.take().unwrap()));
    let err = pipe(Box::new(child.stderr.take().unwrap()));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > TIMEOUT {
            child.kill().ok();
            child.wait().ok();
            panic!(
                "chromium did not finish rendering {} in {TIMEOUT:?}",
                page.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (dom, stderr) = (out.join().unwrap(), err.join().unwrap());
    std::fs::remove_dir_all(&profile).ok();
    assert!(status.success(), "chromium failed ({status}):\n{stderr}");
    let console = stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(String::from)
        .collect();
    Rendered { dom, console }
}

#[test]
fn report_renders_in_headless_chromium() {
    let dir = tempfile_dir().join("report");
    std::fs::create_dir_all(&dir).unwrap();
    let ckpt_path = dir.join("lenet.ckpt");
    let ckpt = trained_lenet();
    ckpt.save(&ckpt_path).unwrap();
    let model = dir.join("lenet-int8.kmodel");
    let bytes = export(
        kestrel_trainer::backend::cpu::Cpu::new(),
        ckpt,
        Quant::Int8,
        None,
    )
    .expect("export int8");
    checkpoint::write_atomic(&model, &bytes).unwrap();

    let written = report::write(&ckpt_path, std::slice::from_ref(&model), None).unwrap();
    assert_eq!(written.path, dir.join("lenet.html"));
    assert_eq!(written.missing_test, None);
    let int8 = &written.measured[0];
    println!(
        "int8: accuracy {:.2}%, agreement {:.2}%",
        100.0 * int8.accuracy,
        100.0 * int8.agreement
    );
    assert!(
        int8.agreement > 0.97,
        "int8 agrees with float on {}",
        int8.agreement
    );
    let html = std::fs::read_to_string(&written.path).unwrap();
    for section in [
        "Training",
        "Layers",
        "First-layer filters",
        "Test split",
        "Exported models",
    ] {
        assert!(
            html.contains(&format!("<h2>{section}</h2>")),
            "section {section}"
        );
    }
    assert!(html.contains("lenet-int8.kmodel") && html.contains("Ankle boot"));
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http"),
        "the report must not load anything from the network"
    );

    let page = render(&written.path);
    assert!(
        page.console.is_empty(),
        "console messages: {:#?}",
        page.console
    );
    assert_eq!(
        page.body_attr("data-rendered"),
        Some("ok"),
        "{}",
        &page.dom[..2000.min(page.dom.len())]
    );
    assert_eq!(page.body_attr("data-plots"), Some("3"));
    assert_eq!(page.body_attr("data-filters"), Some("1"));
    assert_eq!(page.body_attr("data-broken"), Some("0"));

    // The same checks must catch a picture that does not decode and a script error.
    let marker = "data-check=\"filters\" class=\"filters\" alt=\"first-layer filters\" src=\"data:image/png;base64,";
    let at = html.find(marker).expect("filter grid tag") + marker.len();
    let sabotaged = format!(
        "{}iVBORw0KGgo{}<script>notDefined();</script>",
        &html[..at],
        &html[at + 40..]
    );
    let bad = dir.join("sabotaged.html");
    std::fs::write(&bad, sabotaged).unwrap();
    let page = render(&bad);
    assert_eq!(page.body_attr("data-rendered"), Some("broken"));
    assert_eq!(page.body_attr("data-broken"), Some("1"));
    assert_eq!(page.body_attr("data-filters"), Some("0"));
    assert!(
        page.console.iter().any(|l| l.contains("notDefined")),
        "the script error was not seen: {:#?}",
        page.console
    );
}
