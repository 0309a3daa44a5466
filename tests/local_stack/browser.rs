//! The data protection lead's whole story on the consent page, in a real headless Chromium
//! (Debian's `chromium` and `chromium-driver`, driven over WebDriver by `fantoccini`): sign in;
//! see the partner's request; grant part of it with a special-category scope confirmed; the
//! partner's next read holds exactly those fields; opt a pupil out and the partner no longer
//! receives them; the access log shows the calls; a pupil's subject access export finds their
//! rows and the reads that included them; refresh the agent; revoke, and the partner is
//! refused. Each screen is saved to `target/screenshots/` and checked with axe-core (no
//! violation of impact "serious" or "critical").
//!
//! `scripts/test` installs the browser, its driver and axe-core (pinned) and sets
//! `ROLLCALL_REQUIRE_BROWSER=1`, so there the test fails rather than skips without them.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::StatusCode;
use rollcall_core::synthetic;
use serde_json::{Value, json};

use crate::support::Stack;

const ESTAB: &str = "9990081";
const PARTNER: &str = "browser-homework";
const PARTNER_NAME: &str = "Homework Hub";
const ASKS: [&str; 4] = ["Student", "Staff", "StudentDemographic", "StudentMedical"];
const GRANTS: [&str; 2] = ["Student", "StudentDemographic"];

struct Tools {
    chromedriver: PathBuf,
    chromium: PathBuf,
    axe: String,
}

/// The browser, its driver and axe-core, or why the test cannot run.
fn tools() -> Option<Tools> {
    let required = std::env::var("ROLLCALL_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
    let axe_path = std::env::var("ROLLCALL_AXE_JS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("target/browser-tools/node_modules/axe-core/axe.min.js")
        });
    let found = (|| {
        let chromedriver = which("chromedriver")?;
        let chromium = which("chromium")?;
        let axe = std::fs::read_to_string(&axe_path).ok()?;
        Some(Tools {
            chromedriver,
            chromium,
            axe,
        })
    })();
    if found.is_none() {
        let why = format!(
            "the browser test needs chromium, chromedriver and axe-core at {} (scripts/test installs them)",
            axe_path.display()
        );
        assert!(!required, "{why}");
        eprintln!("skipped: {why}");
    }
    found
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// chromedriver on a free port, stopped when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    async fn start(tools: &Tools) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(&tools.chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let url = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if reqwest::get(format!("{url}/status")).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self { child, url }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn browser(driver: &Driver, tools: &Tools, profile: &std::path::Path) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": tools.chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1100,1400",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    ClientBuilder::rustls()
        .expect("a WebDriver client")
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a browser session")
}

/// One browser tab on the stack, saving screenshots and running axe on each screen.
struct Page<'a> {
    client: Client,
    base: &'a str,
    axe: &'a str,
    shots: PathBuf,
    /// Per screen, the axe violations found (rule, impact, nodes).
    audited: Vec<(String, Vec<Value>)>,
}

impl Page<'_> {
    async fn go(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap();
    }

    async fn text(&self) -> String {
        self.client
            .find(Locator::Css("main"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    async fn fill(&self, css: &str, value: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }

    /// Clicks a link or a submit button and waits for the page it leads to.
    async fn click(&self, css: &str) {
        let before = self.client.find(Locator::Css("html")).await.unwrap();
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
            .click()
            .await
            .unwrap();
        for _ in 0..100 {
            // The old page's root goes stale once the new page has replaced it.
            if before.tag_name().await.is_err() {
                let ready = self
                    .client
                    .execute("return document.readyState", vec![])
                    .await;
                if ready.ok().as_ref().and_then(Value::as_str) == Some("complete") {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("clicking {css} led to no new page");
    }

    async fn set_checked(&self, css: &str, checked: bool) {
        let element = self.client.find(Locator::Css(css)).await.unwrap();
        let now = element.prop("checked").await.unwrap().as_deref() == Some("true");
        if now != checked {
            element.click().await.unwrap();
        }
    }

    /// The rows of the subject access screen's table of reads that included the person.
    async fn reads_listed(&self) -> u64 {
        let script = "const t = [...document.querySelectorAll('table')].find(t => t.caption && t.caption.textContent.startsWith('Reads whose'));
                      return t ? t.tBodies[0].rows.length : 0;";
        let count = self.client.execute(script, vec![]).await.unwrap();
        count.as_u64().unwrap()
    }

    /// Saves the screen and checks it with axe-core.
    async fn screen(&mut self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
        self.client.execute(self.axe, vec![]).await.unwrap();
        let found = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, { resultTypes: ['violations'] })
                   .then(r => done(r.violations.map(v => ({ id: v.id, impact: v.impact, nodes: v.nodes.length }))))
                   .catch(e => done([{ id: 'axe-error', impact: 'critical', nodes: String(e) }]));",
                vec![],
            )
            .await
            .unwrap();
        let violations = found.as_array().cloned().unwrap_or_default();
        self.audited.push((name.to_owned(), violations));
    }
}

/// The Students fields a consent of `scopes` releases, as the admin API lists them.
fn released(partner: &Value, scopes: &[&str]) -> BTreeSet<String> {
    (partner["scopes"].as_array().unwrap().iter())
        .filter(|s| scopes.contains(&s["scope"].as_str().unwrap()))
        .flat_map(|s| {
            s["releases"]["Students"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|f| f.as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn a_data_protection_lead_does_everything_from_a_browser() {
    let Some(tools) = tools() else { return };
    let stack = Stack::start().await;
    let school = stack.school(ESTAB).await;
    let today = stack.clock_now().utc_date();
    let data = synthetic::sandbox(ESTAB, 20, 5, today);
    stack
        .upload(&school.agent, &data.upload_body())
        .await
        .expect(StatusCode::OK);
    let management = stack.named_partner(PARTNER, PARTNER_NAME, &ASKS).await;
    let driver = Driver::start(&tools).await;
    let profile = tempfile::tempdir().unwrap();
    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let mut page = Page {
        client: browser(&driver, &tools, profile.path()).await,
        base: &stack.base,
        axe: &tools.axe,
        shots,
        audited: Vec::new(),
    };
    let pupils: Vec<&Value> = data.rows("Students").iter().map(|r| &r["Id"]).collect();
    let (kept, opted) = (pupils[0].as_str().unwrap(), pupils[1].as_str().unwrap());
    let opted_surname = data.rows("Students")[1]["Surname"]
        .as_str()
        .unwrap()
        .to_owned();

    // Sign in: a wrong key is refused and says so; the school's key signs in.
    page.go("/admin/").await;
    page.screen("01-sign-in").await;
    page.fill("#key", "rcs_wrong").await;
    page.click("main button[type=submit]").await;
    assert!(
        page.text().await.contains("not registered"),
        "{}",
        page.text().await
    );
    page.fill("#key", &school.admin).await;
    page.click("main button[type=submit]").await;

    // The partner's request.
    assert!(page.text().await.contains(PARTNER_NAME));
    assert!(page.text().await.contains("Asking; nothing granted"));
    page.screen("02-partners").await;
    page.click(&format!("a[href='/admin/partners/{PARTNER}']"))
        .await;
    let text = page.text().await;
    assert!(
        text.contains(&format!("{PARTNER_NAME} asks to see pupils' core record")),
        "{text}"
    );
    assert!(text.contains("Special category"));
    page.screen("03-partner").await;

    // Grant part of it: special-category data needs the confirmation.
    for scope in ASKS {
        page.set_checked(&format!("#scope-{scope}"), GRANTS.contains(&scope))
            .await;
    }
    page.click("form[action$='/grant'] button[type=submit]")
        .await;
    assert!(
        page.text().await.contains("lawful basis"),
        "{}",
        page.text().await
    );
    page.screen("04-special-needs-confirmation").await;
    for scope in ASKS {
        page.set_checked(&format!("#scope-{scope}"), GRANTS.contains(&scope))
            .await;
    }
    page.set_checked("#confirm-special", true).await;
    page.click("form[action$='/grant'] button[type=submit]")
        .await;
    assert!(
        page.text().await.contains("Saved."),
        "{}",
        page.text().await
    );

    // The partner's next read holds exactly the fields of what was granted.
    let token = stack.token(PARTNER, &management, ESTAB).await;
    let admin = format!("Bearer {}", school.admin);
    let partners = stack
        .send(
            reqwest::Method::GET,
            "/admin/v1/partners",
            Some(&admin),
            None,
        )
        .await
        .expect(StatusCode::OK);
    let entry = (partners["partners"].as_array().unwrap().iter())
        .find(|p| p["partner"] == PARTNER)
        .unwrap()
        .clone();
    // What the scopes release, less the columns the endpoint answers only with an option,
    // plus the change metadata every row carries.
    let students = rollcall_core::catalogue::Catalogue::get()
        .endpoint_by_path("Students")
        .unwrap();
    let optional: BTreeSet<String> = students
        .option_columns()
        .map(|(c, _)| c.to_owned())
        .collect();
    let mut expected: BTreeSet<String> = released(&entry, &GRANTS)
        .difference(&optional)
        .cloned()
        .collect();
    expected.extend(["RowHash".to_owned(), "LastUpdated".to_owned()]);
    let read = stack
        .read(&token, &format!("/api/v1/School/{ESTAB}/Students"))
        .await
        .expect(StatusCode::OK);
    let students = read["Students"].as_array().unwrap();
    assert!(!students.is_empty());
    for row in students {
        let fields: BTreeSet<String> = row.as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            fields, expected,
            "a pupil's row holds exactly the granted fields"
        );
    }
    assert!(expected.contains("Ethnicity") && !expected.contains("MedicalFlag"));

    // Opt a pupil out, found by name.
    page.go(&format!("/admin/partners/{PARTNER}/opt-outs"))
        .await;
    page.fill("#q", &opted_surname).await;
    page.click("form[method=get] button[type=submit]").await;
    page.screen("05-opt-out-search").await;
    page.click(&format!("form input[name=id][value='{opted}'] ~ button"))
        .await;
    assert!(
        page.text().await.contains("Opted out."),
        "{}",
        page.text().await
    );
    page.screen("06-opt-outs").await;
    let read = stack
        .read(&token, &format!("/api/v1/School/{ESTAB}/Students"))
        .await
        .expect(StatusCode::OK);
    let ids: Vec<&str> = (read["Students"].as_array().unwrap().iter())
        .map(|r| r["Id"].as_str().unwrap())
        .collect();
    assert!(!ids.contains(&opted) && ids.contains(&kept), "{ids:?}");

    // The access log shows the calls.
    page.go("/admin/log").await;
    let text = page.text().await;
    assert!(text.matches("Students").count() >= 2, "{text}");
    assert!(text.contains(PARTNER));
    page.screen("07-access-log").await;
    let csv = page
        .client
        .find(Locator::Css("a[href^='/admin/log.csv']"))
        .await
        .unwrap();
    assert!(csv.attr("href").await.unwrap().is_some());

    // Subject access: find the kept pupil; their rows and the two reads that included them.
    page.go("/admin/subjects").await;
    page.fill("#q", kept).await;
    page.click("main form button[type=submit]").await;
    page.screen("08-subject-search").await;
    page.click(&format!("a[href='/admin/subjects/student/{kept}']"))
        .await;
    let text = page.text().await;
    assert!(text.contains("Students"), "{text}");
    assert_eq!(
        text.matches(PARTNER).count(),
        2,
        "two reads included them: {text}"
    );
    page.screen("09-subject-access").await;
    let href = page
        .client
        .find(Locator::Css("a[href$='export?format=csv']"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        href,
        format!("/admin/subjects/student/{kept}/export?format=csv")
    );
    // The opted-out pupil's export lists only the read before the opt-out.
    page.go(&format!("/admin/subjects/student/{opted}")).await;
    assert_eq!(page.reads_listed().await, 1, "{}", page.text().await);
    assert!(
        page.text()
            .await
            .contains(&format!("Opted out for: {PARTNER}"))
    );

    // The agent's health and a refresh.
    page.go("/admin/agent").await;
    page.screen("10-agent").await;
    page.set_checked("#refresh-all", true).await;
    page.click("form[action='/admin/agent/refresh'] button[type=submit]")
        .await;
    assert!(
        page.text().await.contains("Refresh asked for"),
        "{}",
        page.text().await
    );

    // Revoke now: the partner is refused.
    page.go(&format!("/admin/partners/{PARTNER}")).await;
    page.set_checked("#end-now", true).await;
    page.click("form[action$='/revoke'] button[type=submit]")
        .await;
    assert!(
        page.text().await.contains("Access ended"),
        "{}",
        page.text().await
    );
    page.screen("11-revoked").await;
    let refused = stack
        .read(&token, &format!("/api/v1/School/{ESTAB}/Students"))
        .await;
    assert!(refused.status.is_client_error(), "{}", refused.status);

    // Keyboard only: the first Tab reaches the skip link, then the navigation.
    page.go("/admin/partners").await;
    let body = page.client.find(Locator::Css("body")).await.unwrap();
    body.send_keys("\u{e004}").await.unwrap();
    let focused = page.client.active_element().await.unwrap();
    assert_eq!(focused.text().await.unwrap(), "Skip to content");
    focused.send_keys("\u{e004}").await.unwrap();
    let next = page.client.active_element().await.unwrap();
    assert_eq!(
        next.attr("href").await.unwrap().as_deref(),
        Some("/admin/partners")
    );

    // On a phone: nothing wider than the screen, and the same checks pass.
    page.client.set_window_size(390, 844).await.unwrap();
    page.go(&format!("/admin/partners/{PARTNER}")).await;
    let overflow = page
        .client
        .execute(
            "return document.documentElement.scrollWidth - window.innerWidth",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        overflow.as_i64().unwrap() <= 0,
        "wider than a phone by {overflow}px"
    );
    page.screen("12-phone-partner").await;

    // Sign out: the page is closed to the browser again.
    page.click("form.signout button").await;
    page.go("/admin/partners").await;
    assert!(page.text().await.contains("Please sign in"));

    // Accessibility: no serious or critical violation on any screen.
    let report: Vec<String> = (page.audited.iter())
        .map(|(screen, v)| format!("{screen}: {}", Value::Array(v.clone())))
        .collect();
    std::fs::write(page.shots.join("axe.txt"), report.join("\n")).unwrap();
    let serious: Vec<&String> = (page.audited.iter().zip(&report))
        .filter(|((_, v), _)| {
            v.iter()
                .any(|x| matches!(x["impact"].as_str(), Some("serious" | "critical")))
        })
        .map(|(_, line)| line)
        .collect();
    assert!(serious.is_empty(), "axe: {serious:#?}");
    assert_eq!(page.audited.len(), 12);
    page.client.close().await.unwrap();
}
