//! Reading a write-back body: JSON objects whose keys match without regard to case (XoD
//! clients send both `StudentId` and `studentid`), every problem collected with where it is,
//! so one refusal lists all that must be fixed.

use rollcall_core::timestamp::Timestamp;
use serde_json::{Map, Value};

/// At most this many problems are listed in one refusal.
const MAX_LISTED: usize = 20;

/// The problems found in a body, each with its place (`Marks[2].Mark`).
#[derive(Debug, Default)]
pub(crate) struct Problems(Vec<String>);

impl Problems {
    pub fn add(&mut self, place: &str, problem: impl std::fmt::Display) {
        self.0.push(format!("{place}: {problem}"));
    }

    /// Adds a problem unless the same one is already listed.
    pub fn add_once(&mut self, place: &str, problem: impl std::fmt::Display) {
        let text = format!("{place}: {problem}");
        if !self.0.contains(&text) {
            self.0.push(text);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// One message listing the problems (the first [`MAX_LISTED`] of them).
    pub fn message(&self) -> String {
        let mut text = self
            .0
            .iter()
            .take(MAX_LISTED)
            .cloned()
            .collect::<Vec<_>>()
            .join("; ");
        if self.0.len() > MAX_LISTED {
            text.push_str(&format!("; and {} more", self.0.len() - MAX_LISTED));
        }
        text
    }
}

/// One JSON object of the body, at `place`.
pub(crate) struct Record<'a> {
    pub place: String,
    object: &'a Map<String, Value>,
}

impl<'a> Record<'a> {
    pub fn new(place: String, object: &'a Map<String, Value>) -> Self {
        Self { place, object }
    }

    pub fn get(&self, name: &str) -> Option<&'a Value> {
        self.object
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
            .filter(|value| !value.is_null())
    }

    /// Refuses every key that is not one of `fields` (in any case): what rollcall cannot
    /// check is not passed on.
    pub fn only(&self, fields: &[&str], problems: &mut Problems) {
        for key in self.object.keys() {
            if !fields.iter().any(|f| f.eq_ignore_ascii_case(key)) {
                problems.add(
                    &self.at(key),
                    format!(
                        "is not a field rollcall knows here; the fields are {}",
                        fields.join(", ")
                    ),
                );
            }
        }
    }

    fn at(&self, name: &str) -> String {
        if self.place.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.place)
        }
    }

    /// Refuses two keys that differ only in case: which one was meant is not clear.
    pub fn once_each(&self, problems: &mut Problems) {
        let keys: Vec<&String> = self.object.keys().collect();
        for (n, key) in keys.iter().enumerate() {
            if keys[..n]
                .iter()
                .any(|earlier| earlier.eq_ignore_ascii_case(key))
            {
                problems.add_once(&self.at(key), "is given twice (in two cases); give it once");
            }
        }
    }

    /// Text (a number is taken as its digits), trimmed; `None` when absent.
    pub fn text(&self, name: &str, problems: &mut Problems) -> Option<String> {
        match self.get(name)? {
            Value::String(text) if !text.trim().is_empty() => Some(text.trim().to_owned()),
            Value::Number(n) => Some(n.to_string()),
            _ => {
                problems.add(&self.at(name), "must be a non-empty string");
                None
            }
        }
    }

    pub fn required_text(&self, name: &str, problems: &mut Problems) -> Option<String> {
        if self.get(name).is_none() {
            problems.add(&self.at(name), "is required");
            return None;
        }
        self.text(name, problems)
    }

    /// A whole number (also given as a string of digits); `None` when absent.
    pub fn integer(&self, name: &str, problems: &mut Problems) -> Option<i64> {
        let value = self.get(name)?;
        let number = match value {
            Value::Number(n) => n.as_i64(),
            Value::String(text) => text.trim().parse().ok(),
            _ => None,
        };
        if number.is_none() {
            problems.add(&self.at(name), "must be a whole number");
        }
        number
    }

    pub fn required_integer(&self, name: &str, problems: &mut Problems) -> Option<i64> {
        if self.get(name).is_none() {
            problems.add(&self.at(name), "is required");
            return None;
        }
        self.integer(name, problems)
    }

    /// A date `yyyy-MM-dd`, as it stands (no spaces around it, as `format: date` says).
    pub fn required_date(&self, name: &str, problems: &mut Problems) -> Option<String> {
        let text = self.required_text(name, problems)?;
        let well_formed = matches!(self.get(name), Some(Value::String(given))
            if Timestamp::parse_given_date(given).is_ok());
        if !well_formed {
            let text = self.get(name).and_then(Value::as_str).unwrap_or(&text);
            problems.add(
                &self.at(name),
                format!("`{text}` is not a date; write it yyyy-MM-dd, e.g. 2026-11-23"),
            );
            return None;
        }
        Some(text)
    }

    /// A time of day `HH:mm` (24-hour), as minutes after midnight.
    pub fn required_time(&self, name: &str, problems: &mut Problems) -> Option<u32> {
        let text = self.required_text(name, problems)?;
        let minutes = text.split_once(':').and_then(|(hours, minutes)| {
            let two_digits =
                |part: &str| part.len() == 2 && part.bytes().all(|b| b.is_ascii_digit());
            let (h, m): (u32, u32) = (hours.parse().ok()?, minutes.parse().ok()?);
            (two_digits(hours) && two_digits(minutes) && h < 24 && m < 60).then_some(h * 60 + m)
        });
        if minutes.is_none() {
            problems.add(
                &self.at(name),
                format!("`{text}` is not a time; write it HH:mm (24-hour), e.g. 15:30"),
            );
        }
        minutes
    }

    /// Text of at most `max` characters.
    pub fn note(&self, name: &str, max: usize, problems: &mut Problems) -> Option<String> {
        let text = self.text(name, problems)?;
        let length = text.chars().count();
        if length > max {
            problems.add(
                &self.at(name),
                format!("has {length} characters; the limit is {max}"),
            );
        }
        Some(text)
    }

    pub fn required_note(&self, name: &str, max: usize, problems: &mut Problems) -> Option<String> {
        if self.get(name).is_none() {
            problems.add(&self.at(name), "is required");
            return None;
        }
        self.note(name, max, problems)
    }

    /// One of `allowed` (matched without regard to case), answered as written in `allowed`.
    pub fn required_choice(
        &self,
        name: &str,
        allowed: &[&'static str],
        problems: &mut Problems,
    ) -> Option<&'static str> {
        let text = self.required_text(name, problems)?;
        let choice = allowed.iter().find(|a| a.eq_ignore_ascii_case(&text));
        if choice.is_none() {
            problems.add(
                &self.at(name),
                format!("`{text}` is not one of {}", allowed.join(", ")),
            );
        }
        choice.copied()
    }
}

/// The objects of the array `name` of `body`, each as a record at `name[i]`.
pub(crate) fn records<'a>(
    body: &Record<'a>,
    name: &str,
    required: bool,
    problems: &mut Problems,
) -> Vec<Record<'a>> {
    let Some(value) = body.get(name) else {
        if required {
            problems.add(name, "is required: a list of objects");
        }
        return Vec::new();
    };
    let Value::Array(items) = value else {
        problems.add(name, "must be a list of objects");
        return Vec::new();
    };
    if required && items.is_empty() {
        problems.add(name, "is empty; give at least one");
    }
    let mut records = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let place = format!("{name}[{index}]");
        match item {
            Value::Object(object) => {
                let record = Record::new(place, object);
                record.once_each(problems);
                records.push(record);
            }
            _ => problems.add(&place, "must be an object"),
        }
    }
    records
}

/// The optional `Callback` object: `Method` POST and an https `Url`.
pub(crate) fn callback(body: &Record<'_>, problems: &mut Problems) -> Option<Value> {
    let value = body.get("Callback")?;
    let Value::Object(object) = value else {
        problems.add(
            "Callback",
            "must be an object {\"Method\": \"POST\", \"Url\": ...}",
        );
        return None;
    };
    let record = Record::new("Callback".into(), object);
    record.once_each(problems);
    let method = record.required_choice("Method", &["POST"], problems);
    let url = record.required_text("Url", problems);
    if let Some(url) = &url
        && let Err(why) = public_https_url(url)
    {
        problems.add("Callback.Url", why);
    }
    Some(serde_json::json!({ "Method": method?, "Url": url? }))
}

/// The longest callback URL.
const MAX_URL: usize = 2048;

/// A callback must be an `https://` URL of a named public host, without credentials in it: the
/// school's side calls it, from inside the school's network, so it must not name an address
/// there (or the machine itself).
fn public_https_url(url: &str) -> Result<(), String> {
    if url.len() > MAX_URL {
        return Err(format!(
            "is {} characters; the limit is {MAX_URL}",
            url.len()
        ));
    }
    let uri: axum::http::Uri = (url.parse()).map_err(|_| "is not a URL".to_owned())?;
    if !uri
        .scheme_str()
        .is_some_and(|s| s.eq_ignore_ascii_case("https"))
    {
        return Err("must be an https:// URL".into());
    }
    let authority = uri.authority().ok_or("must name a host")?;
    if authority.as_str().contains('@') {
        return Err("must not carry a user name or password".into());
    }
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let named = host.contains('.')
        && host.parse::<std::net::IpAddr>().is_err()
        && !host.eq_ignore_ascii_case("localhost")
        && !host.to_ascii_lowercase().ends_with(".localhost");
    if !named {
        return Err(format!(
            "must name a public host by its domain name, not `{host}`; the school's side calls it"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::public_https_url;

    #[test]
    fn a_callback_names_a_public_host_over_https() {
        assert!(public_https_url("https://partner.example/cb?id=1").is_ok());
        assert!(public_https_url("HTTPS://partner.example:8443/cb").is_ok());
        for refused in [
            "http://partner.example/cb",
            "https://user:pw@partner.example/cb",
            "https://10.0.0.1/cb",
            "https://169.254.169.254/latest/meta-data/",
            "https://[::1]/cb",
            "https://localhost/cb",
            "https://intranet/cb",
            "https://a\nb/",
            "partner.example/cb",
        ] {
            assert!(public_https_url(refused).is_err(), "{refused}");
        }
        let long = format!("https://{}.example/", "a".repeat(3000));
        assert!(public_https_url(&long).is_err());
    }
}
