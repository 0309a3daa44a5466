//! Documents and contact details: user-defined fields, linked documents, person comms and
//! photographs.
//!
//! Linked documents are small one-page PDFs naming their pupil; photographs are 32×32 PNG
//! avatars (a head and shoulders on a plain background) whose colours come from the person's
//! id, so the same person always has the same picture.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;
use time::Date;

use super::days::ymd;
use super::roster::Pupil;
use super::{Days, Rng, Roster, Sets, TOWNS, row};
use crate::dataset::Row;

/// The school's user-defined fields on pupils: id and name.
const UDFS: &[(&str, &str)] = &[
    ("1", "Dinner Money PIN"),
    ("2", "Locker Number"),
    ("3", "Bus Route"),
    ("4", "Instrumental Lessons"),
    ("5", "Photo Consent"),
    ("6", "Library Card Number"),
];

const INSTRUMENTS: &[&str] = &["Violin", "Piano", "Guitar", "Drums", "Flute", "Trumpet"];

/// Types of linked document: id, name and code.
const DOCUMENT_TYPES: &[(&str, &str, &str)] = &[
    ("32", "General Document", "GENERAL"),
    ("33", "Behaviour Letter", "BEHLET"),
    ("34", "SEN Support Plan", "SENPLAN"),
    ("35", "EHC Plan", "EHCP"),
    ("36", "Consent Form", "CONSENT"),
];

/// The school named on its documents.
const SCHOOL: &str = "Larkfield Test Academy";

/// Avatar colours (RGB): backgrounds, skin tones, hair, clothes.
const BACKGROUNDS: &[[u8; 3]] = &[
    [0xcf, 0xe8, 0xfc],
    [0xfd, 0xe2, 0xe4],
    [0xe2, 0xf0, 0xcb],
    [0xff, 0xf1, 0xc1],
    [0xe4, 0xd9, 0xf7],
    [0xd5, 0xf5, 0xf0],
];
const SKIN: &[[u8; 3]] = &[
    [0xff, 0xdb, 0xac],
    [0xf1, 0xc2, 0x7d],
    [0xe0, 0xac, 0x69],
    [0xc6, 0x86, 0x42],
    [0x8d, 0x55, 0x24],
    [0x5c, 0x3a, 0x21],
];
const HAIR: &[[u8; 3]] = &[
    [0x2c, 0x22, 0x2b],
    [0x71, 0x63, 0x5a],
    [0xb5, 0x52, 0x39],
    [0xd6, 0xb3, 0x70],
    [0x4a, 0x31, 0x2c],
    [0xa5, 0xa5, 0xa5],
];
const CLOTHES: &[[u8; 3]] = &[
    [0x1f, 0x3a, 0x93],
    [0x2e, 0x7d, 0x32],
    [0x8e, 0x24, 0xaa],
    [0xc6, 0x28, 0x28],
    [0x37, 0x47, 0x4f],
    [0x00, 0x83, 0x8f],
];

/// The side of an avatar, in pixels.
const AVATAR: u32 = 32;

/// The documents result sets: user-defined fields and pupils' values of them, document types
/// and pupils' linked documents, e-mail addresses and telephone numbers of pupils, staff and
/// contacts, and photographs of every pupil and member of staff and of some contacts.
pub(super) fn sets(roster: &Roster, days: &Days, rng: &mut Rng) -> Sets {
    vec![
        ("UDFs".into(), udfs()),
        ("StudentUDFs".into(), student_udfs(roster, rng)),
        ("DocumentTypes".into(), document_types()),
        ("DocumentAttachments".into(), attachments(roster, days, rng)),
        ("PersonComms".into(), person_comms(roster, rng)),
        ("Photos".into(), photos(roster, rng)),
    ]
}

/// The user-defined field definitions, all on pupils.
fn udfs() -> Vec<Row> {
    UDFS.iter()
        .map(|(id, name)| row(json!({"Id": id, "UDFType": "Student", "UDFName": name})))
        .collect()
}

/// Pupils' values: every pupil has a dinner money PIN and a photo consent answer; most have a
/// locker and a library card, some a bus route or instrumental lessons.
fn student_udfs(roster: &Roster, rng: &mut Rng) -> Vec<Row> {
    let mut rows = Vec::with_capacity(roster.pupils.len() * 4);
    for (n, pupil) in roster.pupils.iter().enumerate() {
        let block = ["A", "B", "C", "D", "E"][(pupil.year as usize).saturating_sub(7) % 5];
        let values = [
            Some(format!("{:04}", rng.below(10_000))),
            rng.chance(70).then(|| format!("{block}{:03}", n % 1000)),
            rng.chance(25).then(|| {
                let route = 1 + rng.below(TOWNS.len());
                format!("Route {route} - {}", TOWNS[route - 1])
            }),
            rng.chance(8).then(|| rng.pick(INSTRUMENTS).to_string()),
            Some(if rng.chance(94) { "Yes" } else { "No" }.to_string()),
            rng.chance(50).then(|| format!("LIB{}", pupil.id)),
        ];
        for ((_, name), value) in UDFS.iter().zip(values) {
            if let Some(value) = value {
                rows.push(row(json!({
                    "Id": (11_001 + rows.len()).to_string(), "StudentId": pupil.id,
                    "UDFName": name, "UDFValue": value,
                })));
            }
        }
    }
    rows
}

/// The document types.
fn document_types() -> Vec<Row> {
    DOCUMENT_TYPES
        .iter()
        .map(|(id, name, code)| row(json!({"Id": id, "DocumentTypeName": name, "Code": code})))
        .collect()
}

/// Pupils' linked documents: the plan of every pupil with an EHC plan and of most at SEN
/// support, and for some pupils a behaviour letter, a trip consent form or primary transfer
/// notes, dated this academic year.
fn attachments(roster: &Roster, days: &Days, rng: &mut Rng) -> Vec<Row> {
    let year = (days.academic_year_start() - days.today).whole_days();
    let school_days = days.school_days(year.min(-28), -1);
    let mut rows = Vec::new();
    for pupil in &roster.pupils {
        let mut documents = Vec::new();
        match pupil.sen.as_str() {
            "E" => documents.push((3, "Annual review of EHC plan".to_string())),
            "K" if rng.chance(80) => documents.push((2, "SEN support plan review".to_string())),
            _ => {}
        }
        if rng.chance(10) {
            documents.push((1, "Behaviour letter home".to_string()));
        }
        if rng.chance(15) {
            documents.push((4, format!("Trip consent: Year {} museum visit", pupil.year)));
        }
        if rng.chance(8) {
            documents.push((0, "Transfer notes from primary school".to_string()));
        }
        for (kind, summary) in documents {
            let day = school_days[rng.below(school_days.len())];
            rows.push(attachment(
                rows.len(),
                pupil,
                DOCUMENT_TYPES[kind],
                &summary,
                day,
            ));
        }
    }
    rows
}

/// A DocumentAttachments row: a one-page PDF, stored uncompressed.
fn attachment(
    n: usize,
    pupil: &Pupil,
    (_, type_name, code): (&str, &str, &str),
    summary: &str,
    day: Date,
) -> Row {
    let stamp = format!("{:02}/{:02}/{}", day.day(), day.month() as u8, day.year());
    let summary = format!("{summary} ({stamp})");
    let pdf = pdf(&[
        SCHOOL.to_string(),
        format!("{type_name}: {} {}", pupil.forename, pupil.surname),
        summary.clone(),
        "A document of the rollcall sandbox: every person in it is invented.".to_string(),
    ]);
    row(json!({
        "Id": (32 + n).to_string(), "StudentId": pupil.id,
        "FileName": format!("{code}_{}_{}.pdf", pupil.id, ymd(day)),
        "DocumentTypeName": type_name, "Size": pdf.len(), "CompressedSize": pdf.len(),
        "Attachment": STANDARD.encode(&pdf), "Summary": summary, "LastModified": ymd(day),
    }))
}

/// A minimal one-page PDF showing `lines` in Helvetica.
fn pdf(lines: &[String]) -> Vec<u8> {
    let mut text = String::from("BT /F1 11 Tf 56 780 Td 16 TL");
    for line in lines {
        text.push_str(&format!(" ({}) '", pdf_text(line)));
    }
    text.push_str(" ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] \
         /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>"
            .to_string(),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
            .to_string(),
        format!("<< /Length {} >>\nstream\n{text}\nendstream", text.len()),
    ];
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (n, object) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend(format!("{} 0 obj\n{object}\nendobj\n", n + 1).bytes());
    }
    let xref = out.len();
    out.extend(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).bytes());
    for offset in offsets {
        out.extend(format!("{offset:010} 00000 n \n").bytes());
    }
    out.extend(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .bytes(),
    );
    out
}

/// Text as a PDF string's ASCII contents: Latin-1 letters as octal escapes (WinAnsi has them
/// at the same codes), the few other letters of the name lists without their marks.
fn pdf_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '(' | ')' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            '\u{a0}'..='\u{ff}' => out.push_str(&format!("\\{:03o}", u32::from(c))),
            'ł' => out.push('l'),
            'ę' => out.push('e'),
            'ş' => out.push('s'),
            _ => out.push('?'),
        }
    }
    out
}

/// E-mail addresses and telephone numbers: a home telephone and a school e-mail address for
/// every pupil and a mobile for some (more of the older ones); work e-mail and telephone for
/// every member of staff, a mobile and home e-mail for some; the home e-mail and mobile of
/// every contact (as on their Contacts row) and a work telephone for some.
fn person_comms(roster: &Roster, rng: &mut Rng) -> Vec<Row> {
    let mut rows = Vec::with_capacity(
        roster.pupils.len() * 3 + roster.staff.len() * 4 + roster.contacts.len() * 3,
    );
    for pupil in &roster.pupils {
        let mut comms = Comms::new(&mut rows, "PL", &pupil.id, "Student");
        comms.add("T", "H", landline(rng), None);
        if rng.chance(if pupil.year >= 9 { 60 } else { 30 }) {
            comms.add("M", "M", mobile(rng), None);
        }
        let email = format!("{}@pupils.larkfield.example", pupil.id);
        comms.add("E", "W", email, None);
    }
    for staff in &roster.staff {
        let mut comms = Comms::new(&mut rows, "PWT", &staff.id, "Staff");
        comms.add(
            "E",
            "W",
            format!("staff{}@larkfield.example", staff.id),
            None,
        );
        comms.add("T", "W", landline(rng), Some("School extension"));
        if rng.chance(60) {
            comms.add("M", "M", mobile(rng), Some("Not for parents' use"));
        }
        if rng.chance(50) {
            comms.add("E", "H", format!("home{}@mail.example", staff.id), None);
        }
    }
    for contact in &roster.contacts {
        let mut comms = Comms::new(&mut rows, "PC", &contact.id, "Contact");
        let number: u64 = contact.id.parse().unwrap_or(0);
        let note = rng.chance(10).then_some("Prefers text messages");
        comms.add("M", "M", format!("07700 9{:05}", number % 100_000), note);
        comms.add("E", "H", format!("parent{}@mail.example", contact.id), None);
        if rng.chance(30) {
            comms.add("T", "W", landline(rng), None);
        }
    }
    rows
}

/// The PersonComms rows of one person, in order of priority; the first of each kind is the
/// default.
struct Comms<'a> {
    rows: &'a mut Vec<Row>,
    prefix: &'a str,
    person: &'a str,
    kind: &'a str,
    priority: u32,
    defaults: Vec<&'static str>,
}

impl<'a> Comms<'a> {
    fn new(rows: &'a mut Vec<Row>, prefix: &'a str, person: &'a str, kind: &'a str) -> Self {
        Self {
            rows,
            prefix,
            person,
            kind,
            priority: 0,
            defaults: Vec::new(),
        }
    }

    /// A row of comms type `E`, `T` or `M` at location `H`, `W` or `M`.
    fn add(&mut self, comms: &'static str, location: &str, value: String, note: Option<&str>) {
        self.priority += 1;
        let default = !self.defaults.contains(&comms);
        if default {
            self.defaults.push(comms);
        }
        let (prefix, person) = (self.prefix, self.person);
        self.rows.push(row(json!({
            "Id": format!("{prefix}-{person}.{}.{comms}", self.priority), "PersonId": person,
            "PersonType": self.kind, "CommsType": comms, "LocationCode": location,
            "Priority": self.priority, "IsDefault": u8::from(default), "Value": value,
            "Notes": note,
        })));
    }
}

/// A number of the range Ofcom keeps for drama.
fn landline(rng: &mut Rng) -> String {
    format!("01632 960{:03}", rng.below(1000))
}

/// A mobile number of the range Ofcom keeps for drama.
fn mobile(rng: &mut Rng) -> String {
    format!("07700 900{:03}", rng.below(1000))
}

/// A photograph of every pupil and member of staff, and of about one contact in ten (those
/// who collect pupils).
fn photos(roster: &Roster, rng: &mut Rng) -> Vec<Row> {
    let mut rows = Vec::with_capacity(roster.pupils.len() + roster.staff.len());
    for pupil in &roster.pupils {
        let name = format!("{} {}", pupil.forename, pupil.surname);
        rows.push(photo(rows.len(), &pupil.id, "Student", &name));
    }
    for staff in &roster.staff {
        rows.push(photo(rows.len(), &staff.id, "Staff", &staff.display_name));
    }
    for contact in &roster.contacts {
        if rng.chance(10) {
            let name = format!("{} {}", contact.forename, contact.surname);
            rows.push(photo(rows.len(), &contact.id, "Contact", &name));
        }
    }
    rows
}

/// A Photos row: the person's avatar, base64-encoded.
fn photo(n: usize, person: &str, kind: &str, name: &str) -> Row {
    let picture = avatar(&format!("{kind}:{person}"))
        .map(|png| STANDARD.encode(png))
        .ok();
    row(json!({
        "Id": (1 + n).to_string(), "PersonId": person, "PersonType": kind, "PersonName": name,
        "Photo": picture,
    }))
}

/// A 32×32 PNG of four colours, each chosen by a hash of `key`: background, skin, hair
/// (short, or long for about half), and clothes.
fn avatar(key: &str) -> Result<Vec<u8>, png::EncodingError> {
    let hash = mix(key);
    let colour =
        |colours: &[[u8; 3]], shift: u32| colours[(hash >> shift) as usize % colours.len()];
    let palette: Vec<u8> = [
        colour(BACKGROUNDS, 0),
        colour(SKIN, 8),
        colour(HAIR, 16),
        colour(CLOTHES, 24),
    ]
    .concat();
    let long_hair = (hash >> 32) & 1 == 1;
    // Two bits a pixel, four pixels a byte, the leftmost in the high bits.
    let mut pixels = vec![0u8; (AVATAR * AVATAR / 4) as usize];
    for y in 0..AVATAR {
        for x in 0..AVATAR {
            let at = (y * AVATAR + x) as usize;
            pixels[at / 4] |= avatar_pixel(x as i32, y as i32, long_hair) << (6 - 2 * (at % 4));
        }
    }
    let mut out = Vec::with_capacity(200);
    let mut encoder = png::Encoder::new(&mut out, AVATAR, AVATAR);
    encoder.set_color(png::ColorType::Indexed);
    encoder.set_depth(png::BitDepth::Two);
    encoder.set_palette(palette);
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&pixels)?;
    writer.finish()?;
    Ok(out)
}

/// The palette index of a pixel of an avatar: 0 background, 1 skin (face and neck), 2 hair,
/// 3 clothes (shoulders).
fn avatar_pixel(x: i32, y: i32, long_hair: bool) -> u8 {
    let dx = x - 16;
    let shoulders = dx * dx * 144 + (y - 35) * (y - 35) * 196 < 144 * 196;
    let face = dx * dx + (y - 13) * (y - 13) < 49;
    let crown = dx * dx + (y - 12) * (y - 12) < 64 && y <= 10;
    let sides = long_hair && dx * dx + (y - 13) * (y - 13) < 72 && dx.abs() >= 6 && y <= 21;
    let neck = dx.abs() <= 2 && (19..=23).contains(&y);
    if shoulders {
        3
    } else if crown || sides {
        2
    } else if face || neck {
        1
    } else {
        0
    }
}

/// A well-spread 64-bit hash of `key` (FNV-1a, then SplitMix64's finaliser).
fn mix(key: &str) -> u64 {
    let mut z = key.bytes().fold(0xCBF2_9CE4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3)
    });
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{text, values};
    use std::collections::BTreeSet;

    use super::*;
    use crate::synthetic::SyntheticSchool;

    fn school() -> SyntheticSchool {
        super::super::sandbox("9992001", 120, 7, time::macros::date!(2026 - 12 - 06))
    }

    #[test]
    fn people_and_names_resolve() {
        let school = school();
        let pupils = values(&school, "Students", "Id");
        for (set, field, target) in [
            ("StudentUDFs", "StudentId", &pupils),
            ("DocumentAttachments", "StudentId", &pupils),
            (
                "StudentUDFs",
                "UDFName",
                &values(&school, "UDFs", "UDFName"),
            ),
            (
                "DocumentAttachments",
                "DocumentTypeName",
                &values(&school, "DocumentTypes", "DocumentTypeName"),
            ),
        ] {
            let ids = values(&school, set, field);
            assert!(ids.is_subset(target), "{set}.{field}: {ids:?}");
        }
        let people = [
            ("Student", pupils.clone()),
            ("Staff", values(&school, "Staff", "Id")),
            ("Contact", values(&school, "Contacts", "Id")),
        ];
        for set in ["PersonComms", "Photos"] {
            for r in school.rows(set) {
                let (kind, person) = (text(r, "PersonType"), text(r, "PersonId"));
                let known = people
                    .iter()
                    .find(|(k, _)| *k == kind)
                    .is_some_and(|(_, ids)| ids.contains(&person));
                assert!(known, "{set}: {r:?}");
            }
            let kinds = values(&school, set, "PersonType");
            assert_eq!(kinds.len(), 3, "{set} is of all three kinds: {kinds:?}");
        }
        let photographed: BTreeSet<String> = school
            .rows("Photos")
            .iter()
            .filter(|r| r["PersonType"] == "Student")
            .map(|r| text(r, "PersonId"))
            .collect();
        assert_eq!(photographed, pupils);
    }

    #[test]
    fn photos_are_32_pixel_pngs_and_attachments_pdfs() {
        let school = school();
        for r in school.rows("Photos") {
            let bytes = STANDARD.decode(text(r, "Photo")).unwrap();
            assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "{r:?}");
            let reader = png::Decoder::new(std::io::Cursor::new(bytes))
                .read_info()
                .unwrap();
            assert_eq!((reader.info().width, reader.info().height), (32, 32));
        }
        for r in school.rows("DocumentAttachments") {
            let bytes = STANDARD.decode(text(r, "Attachment")).unwrap();
            assert!(bytes.starts_with(b"%PDF-1.4"), "{r:?}");
            assert!(bytes.ends_with(b"%%EOF\n"));
            assert_eq!(r["Size"], bytes.len());
        }
    }

    #[test]
    fn the_same_person_has_the_same_photo_and_others_differ() {
        assert_eq!(avatar("Student:1").unwrap(), avatar("Student:1").unwrap());
        let distinct: BTreeSet<Vec<u8>> = (0..20)
            .map(|n| avatar(&format!("Student:{n}")).unwrap())
            .collect();
        assert!(distinct.len() > 10);
    }
}
