//! A synthetic school as a DfE Common Transfer File (CTF), for testing CTF readers: its
//! pupils, their contacts and the links between them, in the shape of a real MIS export
//! (see `shared/reference/ctf/README.md`), with the quirks real files have: house numbers
//! padded with spaces, contacts out of `Order`, a parent repeated under each sibling,
//! `AddressAsPupil` for contacts who live with the pupil and a written-out address for those
//! who do not. Written in one pass with quick-xml's writer, so names with apostrophes,
//! accents, `&` or `<` are escaped as XML needs.

use std::collections::HashMap;

use quick_xml::Writer;
use quick_xml::escape::partial_escape;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use serde_json::Value;

use super::SyntheticSchool;
use crate::dataset::Row;

/// The school's `Students`, `Contacts` and `StudentContacts` as a CTF of `version` (e.g. 25,
/// written `25.0`) from the school `lea`/`estab`. Pupils' and contacts' sex is written as
/// `Gender` up to version 24 and as `Sex` from 25. The same school and arguments always give
/// the same bytes.
pub fn ctf(school: &SyntheticSchool, version: u32, lea: &str, estab: &str) -> String {
    let contacts: HashMap<&str, &Row> = school
        .rows("Contacts")
        .iter()
        .filter_map(|c| Some((c.get("Id")?.as_str()?, c)))
        .collect();
    let mut links: HashMap<&str, Vec<&Row>> = HashMap::new();
    for link in school.rows("StudentContacts") {
        if let Some(student) = link.get("StudentId").and_then(Value::as_str) {
            links.entry(student).or_default().push(link);
        }
    }
    let sex = if version <= 24 { "Gender" } else { "Sex" };
    let year = 2000 + version;
    let mut out = Out(Writer::new_with_indent(
        Vec::with_capacity(4096 * (school.rows("Students").len() + 1)),
        b' ',
        2,
    ));
    out.event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
    out.event(Event::Comment(BytesText::new(
        " SYNTHETIC test data made by rollcall: every name, number, address and school is invented ",
    )));
    out.open("CTfile");
    out.open("Header");
    out.leaf("DocumentName", "Common Transfer File");
    out.leaf("CTFversion", &format!("{version}.0"));
    out.leaf("DateTime", &format!("{year}-10-01T09:00:00"));
    out.leaf("DocumentQualifier", "full");
    out.leaf("SupplierID", "rollcall synthetic school");
    out.open("SourceSchool");
    out.leaf("LEA", lea);
    out.leaf("Estab", estab);
    out.leaf("SchoolName", &school.name);
    out.leaf("AcademicYear", &year.to_string());
    out.close("SourceSchool");
    out.open("DestSchool");
    out.leaf("LEA", "MMM");
    out.leaf("Estab", "MMMM");
    out.close("DestSchool");
    out.close("Header");
    out.open("CTFpupilData");
    for (n, student) in school.rows("Students").iter().enumerate() {
        let id = text(student, "Id").unwrap_or_default();
        let mut own = links.get(id.as_str()).cloned().unwrap_or_default();
        own.sort_by_key(|l| {
            l.get("Priority")
                .and_then(Value::as_u64)
                .unwrap_or(u64::MAX)
        });
        // Real files list contacts out of Order now and then.
        if n % 3 == 1 {
            own.reverse();
        }
        pupil(&mut out, student, n, sex, &own, &contacts);
    }
    out.close("CTFpupilData");
    out.close("CTfile");
    let mut bytes = out.0.into_inner();
    bytes.push(b'\n');
    String::from_utf8(bytes).expect("quick-xml writes the UTF-8 it is given")
}

fn pupil(
    out: &mut Out,
    s: &Row,
    n: usize,
    sex: &str,
    links: &[&Row],
    contacts: &HashMap<&str, &Row>,
) {
    let field = |name: &str| text(s, name);
    let legal_surname = field("LegalSurname").or_else(|| field("Surname"));
    let legal_forename = field("LegalForename").or_else(|| field("Forename"));
    out.open("Pupil");
    out.opt("UPN", field("UPN"));
    out.opt("UniqueLearnerNumber", field("UniqueLearnerNumber"));
    out.opt("Surname", legal_surname.clone());
    out.opt("Forename", legal_forename.clone());
    out.opt("DOB", field("DateOfBirth"));
    out.opt(sex, field("Gender"));
    out.open("BasicDetails");
    out.opt("FormerUPN", field("FormerUPN"));
    let preferred =
        |name: &str, legal: &Option<String>| field(name).filter(|p| Some(p) != legal.as_ref());
    out.opt("PreferredSurname", preferred("Surname", &legal_surname));
    out.opt("PreferredForename", preferred("Forename", &legal_forename));
    out.opt("MiddleNames", field("MiddleName"));
    let year = field("YearGroup").map(|y| y.trim_start_matches("Year ").to_owned());
    out.opt("NCyearActual", year);
    out.opt("Ethnicity", field("EthnicityCode"));
    out.opt("EthnicitySource", field("EthnicitySource"));
    if let Some(language) = field("FirstLanguageCode") {
        out.open("Languages");
        out.open("Type");
        out.leaf("LanguageType", "F");
        out.leaf("Language", &language);
        out.close("Type");
        out.close("Languages");
    }
    let service = field("ServiceChild").map(|s| if s == "1" { "Y" } else { "N" }.to_owned());
    out.opt("ServiceChild", service);
    out.leaf("MedicalFlag", "false");
    out.opt("EnrolStatus", field("EnrolmentStatus"));
    out.close("BasicDetails");
    let entry = field("EntryDate").unwrap_or_else(|| "2024-09-03".into());
    let entry_year: i32 = entry[..4].parse().unwrap_or(2024);
    let eligible = field("FsmEligible").as_deref() == Some("1");
    if eligible || n % 7 == 0 {
        out.open("FSMhistory");
        if n % 7 == 0 {
            // An ended eligibility, from the previous school.
            out.open("FSMinstance");
            out.leaf("FSMstartDate", &format!("{}-01-10", entry_year - 2));
            out.leaf("FSMendDate", &format!("{}-07-19", entry_year - 1));
            out.leaf("UKcountry", "ENG");
            out.close("FSMinstance");
        }
        if eligible {
            out.open("FSMinstance");
            out.leaf("FSMstartDate", &entry);
            out.leaf("UKcountry", "ENG");
            out.close("FSMinstance");
        }
        out.close("FSMhistory");
    } else {
        out.empty("FSMhistory");
    }
    out.open("LookedAfter");
    let in_care = field("InLeaCare").as_deref() == Some("1");
    out.leaf("InCare", if in_care { "true" } else { "false" });
    out.close("LookedAfter");
    match field("SENProvision").as_deref() {
        Some(provision @ ("K" | "E")) => {
            out.open("SENhistory");
            out.open("SEN");
            out.leaf("StartDate", &entry);
            out.leaf("SENprovision", provision);
            out.close("SEN");
            out.close("SENhistory");
        }
        _ => out.empty("SENhistory"),
    }
    // Real files pad house numbers now and then.
    let pad = n % 4 == 0;
    address(out, s, pad);
    if !links.is_empty() {
        out.open("Contacts");
        for link in links {
            let contact_id = text(link, "ContactId").unwrap_or_default();
            if let Some(c) = contacts.get(contact_id.as_str()) {
                contact(out, s, c, link, sex);
            }
        }
        out.close("Contacts");
    }
    out.close("Pupil");
}

fn contact(out: &mut Out, pupil: &Row, c: &Row, link: &Row, sex: &str) {
    let field = |name: &str| text(c, name);
    out.open("Contact");
    out.opt("Order", text(link, "Priority"));
    out.opt("Title", field("Title"));
    out.opt("Surname", field("Surname"));
    out.opt("Forename", field("Forename"));
    let gender = match field("Title").as_deref() {
        Some("Mrs" | "Ms" | "Miss") => Some("F".to_owned()),
        Some("Mr") => Some("M".to_owned()),
        _ => None,
    };
    out.opt(sex, gender);
    let relationship = text(link, "Relationship").map(|r| relationship_code(&r).to_owned());
    out.opt("Relationship", relationship);
    let responsible = text(link, "ParResp").as_deref() == Some("1");
    out.leaf("Responsibility", if responsible { "true" } else { "false" });
    if c.get("AddressBlock").is_some() && c.get("AddressBlock") == pupil.get("AddressBlock") {
        out.open("Address");
        out.leaf("AddressAsPupil", "true");
        out.close("Address");
    } else if c.get("AddressBlock").is_some() {
        // Lives elsewhere (a brother's or sister's home): the address as lines, as some MIS
        // write it.
        out.open("Address");
        out.open("AddressLines");
        let first = [field("HouseNo"), field("Street")]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        out.leaf("AddressLine1", &first);
        out.opt("AddressLine2", field("TownOrCity"));
        out.close("AddressLines");
        out.opt("PostCode", field("PostCode"));
        out.opt("Country", field("Country"));
        out.close("Address");
    }
    let phones: Vec<(&str, String)> =
        [("H", "HomePhone"), ("M", "MobilePhone"), ("W", "WorkPhone")]
            .into_iter()
            .filter_map(|(kind, name)| Some((kind, field(name)?)))
            .collect();
    if !phones.is_empty() {
        out.open("Phones");
        for (kind, number) in phones {
            out.open("Phone");
            out.leaf("TelephoneType", kind);
            out.leaf("PhoneNo", &number);
            out.close("Phone");
        }
        out.close("Phones");
    }
    out.opt("Email", field("HomeEmail"));
    out.close("Contact");
}

fn address(out: &mut Out, s: &Row, pad: bool) {
    let field = |name: &str| text(s, name);
    out.open("Address");
    out.open("BS7666Address");
    out.opt("SAON", field("Apartment"));
    let paon = field("HouseNo").or_else(|| field("HouseName"));
    out.opt(
        "PAON",
        paon.map(|p| if pad { format!("  {p}  ") } else { p }),
    );
    out.opt("Street", field("Street"));
    out.opt("Locality", field("District"));
    out.opt("Town", field("TownOrCity"));
    out.opt("PostTown", field("TownOrCity"));
    out.close("BS7666Address");
    out.opt("County", field("County"));
    out.opt("PostCode", field("PostCode"));
    out.opt("Country", field("Country"));
    out.close("Address");
}

/// XoD relationship text → CTF code (reference, "Codes").
fn relationship_code(text: &str) -> &'static str {
    match text {
        "Mother" => "PAM",
        "Father" => "PAF",
        "Step-mother" | "Step Mother" => "STM",
        "Step-father" | "Step Father" => "STF",
        "Foster mother" | "Foster Mother" => "FOM",
        "Foster father" | "Foster Father" => "FOF",
        "Carer" => "CAR",
        "Other relative" | "Other Relative" => "REL",
        "Other family member" | "Other Family Member" => "FAM",
        _ => "OTH",
    }
}

/// A field as text: strings as they are, numbers written out; nothing for null or empty.
fn text(row: &Row, name: &str) -> Option<String> {
    match row.get(name)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(u8::from(*b).to_string()),
        _ => None,
    }
}

/// Writes to memory, which cannot fail. Text escapes `&`, `<` and `>` only: apostrophes and
/// quotes stay as MIS exports write them.
struct Out(Writer<Vec<u8>>);

impl Out {
    fn event(&mut self, event: Event<'_>) {
        self.0
            .write_event(event)
            .expect("writing to memory cannot fail");
    }
    fn open(&mut self, name: &str) {
        self.event(Event::Start(BytesStart::new(name)));
    }
    fn close(&mut self, name: &str) {
        self.event(Event::End(BytesEnd::new(name)));
    }
    fn empty(&mut self, name: &str) {
        self.event(Event::Empty(BytesStart::new(name)));
    }
    fn leaf(&mut self, name: &str, value: &str) {
        self.0
            .create_element(name)
            .write_text_content(BytesText::from_escaped(partial_escape(value)))
            .expect("writing to memory cannot fail");
    }
    fn opt(&mut self, name: &str, value: Option<String>) {
        if let Some(v) = value {
            self.leaf(name, &v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::school;
    use quick_xml::Reader;

    /// Every element's text, by element name, read back with quick-xml.
    fn texts(xml: &str, element: &str) -> Vec<String> {
        let mut reader = Reader::from_str(xml);
        let (mut current, mut out): (Option<String>, _) = (None, Vec::new());
        loop {
            match reader.read_event().expect("well-formed XML") {
                Event::Start(e) => {
                    current = (e.name().as_ref() == element.as_bytes()).then(String::new);
                }
                Event::Text(t) => {
                    if let Some(c) = &mut current {
                        c.push_str(&t.xml10_content().unwrap());
                    }
                }
                Event::GeneralRef(r) => {
                    if let Some(c) = &mut current {
                        let name = r.decode().unwrap();
                        c.push_str(quick_xml::escape::resolve_predefined_entity(&name).unwrap());
                    }
                }
                Event::End(_) => out.extend(current.take()),
                Event::Eof => break,
                _ => {}
            }
        }
        out
    }

    #[test]
    fn version_24_writes_gender_and_25_writes_sex() {
        let s = school("9992001", 30, 4);
        let v24 = ctf(&s, 24, "999", "2001");
        let v25 = ctf(&s, 25, "999", "2001");
        assert!(v24.contains("<CTFversion>24.0</CTFversion>"));
        assert!(v24.contains("<Gender>") && !v24.contains("<Sex>"));
        assert!(v25.contains("<CTFversion>25.0</CTFversion>"));
        assert!(v25.contains("<Sex>") && !v25.contains("<Gender>"));
        assert_eq!(v25, ctf(&s, 25, "999", "2001"), "the same bytes every time");
    }

    #[test]
    fn names_are_escaped_and_read_back_as_they_were() {
        let mut s = school("9992001", 12, 9);
        let students = &mut s
            .result_sets
            .iter_mut()
            .find(|(n, _)| n == "Students")
            .unwrap()
            .1;
        students[0].insert("LegalSurname".into(), "O'Brien & <Sons> \"Ltd\"".into());
        let xml = ctf(&s, 25, "999", "2001");
        let surnames = texts(&xml, "Surname");
        assert!(
            surnames.contains(&"O'Brien & <Sons> \"Ltd\"".to_owned()),
            "{surnames:?}"
        );
        assert!(
            xml.contains("O'Brien &amp; &lt;Sons&gt; \"Ltd\""),
            "only &, < and > escaped"
        );
        for student in s.rows("Students").iter().skip(1) {
            let surname = student["LegalSurname"].as_str().unwrap();
            assert!(surnames.iter().any(|s| s == surname), "{surname}");
        }
    }

    #[test]
    fn the_quirks_of_real_files_are_there() {
        let s = school("9992001", 200, 5);
        let xml = ctf(&s, 24, "999", "2001");
        assert!(texts(&xml, "PAON").iter().any(|p| p.starts_with("  ")));
        assert!(xml.contains("<AddressAsPupil>true</AddressAsPupil>"));
        assert!(
            xml.contains("<AddressLines>"),
            "a sibling's parent lives elsewhere"
        );
        let orders = texts(&xml, "Order");
        assert!(
            orders.windows(2).any(|w| w == ["2", "1"]),
            "contacts out of Order"
        );
        let links = s.rows("StudentContacts").len();
        assert_eq!(orders.len(), links, "every link is a Contact");
        assert!(links > s.rows("Contacts").len(), "siblings share a parent");
    }
}
