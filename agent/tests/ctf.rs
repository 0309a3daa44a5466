//! The CTF reader against synthetic schools written as CTF by `rollcall_core::synthetic::ctf`
//! and against small hand-written files, each made for one rule.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use rollcall_agent::sources::ctf::{
    CtfError, CtfErrorKind, CtfExtract, Row, read_ctf, read_ctf_as_of, student_id,
};
use rollcall_core::synthetic::{self, SyntheticSchool};
use serde_json::{Value, json};
use time::macros::date;

const TODAY: time::Date = date!(2026 - 12 - 06);

fn read(name: &str, xml: &str) -> Result<CtfExtract, CtfError> {
    read_ctf_as_of(Path::new(name), xml.as_bytes(), TODAY)
}

fn text(row: &Row, field: &str) -> String {
    match row.get(field) {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

/// A CTF of `version` holding `pupils` (the XML of `Pupil` elements).
fn ctf(version: &str, pupils: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<CTfile>
  <Header>
    <DocumentName>Common Transfer File</DocumentName>
    <CTFversion>{version}</CTFversion>
    <DateTime>2026-11-23T10:00:00</DateTime>
    <DocumentQualifier>full</DocumentQualifier>
    <SourceSchool>
      <LEA>999</LEA>
      <Estab>2001</Estab>
      <SchoolName>Larkfield Test Academy</SchoolName>
      <AcademicYear>2026</AcademicYear>
    </SourceSchool>
    <DestSchool>
      <LEA>999</LEA>
      <Estab>4002</Estab>
    </DestSchool>
  </Header>
  <CTFpupilData>
{pupils}  </CTFpupilData>
</CTfile>
"#
    )
}

/// A pupil with the given UPN, address and contacts (the XML of `Contact` elements).
fn pupil(upn: &str, forename: &str, address: &str, contacts: &str) -> String {
    format!(
        r#"    <Pupil>
      <UPN>{upn}</UPN>
      <Surname>Smith</Surname>
      <Forename>{forename}</Forename>
      <DOB>2014-05-01</DOB>
      <Sex>F</Sex>
      <Address>{address}</Address>
      <Contacts>{contacts}</Contacts>
    </Pupil>
"#
    )
}

fn bs7666(paon: &str, postcode: &str) -> String {
    format!(
        "<BS7666Address><PAON>{paon}</PAON><Street>Mill Lane</Street><Town>Brookton</Town>\
         </BS7666Address><PostCode>{postcode}</PostCode>"
    )
}

/// A mother called Sarah Smith, with the given phone, e-mail and address.
fn sarah(order: u32, phone: &str, email: &str, address: &str) -> String {
    format!(
        "<Contact><Order>{order}</Order><Title>Mrs</Title><Surname>Smith</Surname>\
         <Forename>Sarah</Forename><Relationship>PAM</Relationship>\
         <Responsibility>true</Responsibility><Address>{address}</Address>\
         <Phones><Phone><TelephoneType>M</TelephoneType><PhoneNo>{phone}</PhoneNo></Phone></Phones>\
         <Email>{email}</Email></Contact>"
    )
}

const AS_PUPIL: &str = "<AddressAsPupil>true</AddressAsPupil>";

// ---------------------------------------------------------------- round trip

/// What a pupil's contacts are, comparable between the generator and the reader.
type Links = BTreeMap<String, Vec<(String, String, String, String, String, String)>>;

fn links(students: &[Row], contacts: &[Row], student_contacts: &[Row]) -> Links {
    let upn: HashMap<String, String> = students
        .iter()
        .map(|s| (text(s, "Id"), text(s, "UPN")))
        .collect();
    let contact: HashMap<String, &Row> = contacts.iter().map(|c| (text(c, "Id"), c)).collect();
    let mut out = Links::new();
    for link in student_contacts {
        let c = contact[&text(link, "ContactId")];
        out.entry(upn[&text(link, "StudentId")].clone())
            .or_default()
            .push((
                text(link, "Priority"),
                text(c, "Title"),
                text(c, "Forename"),
                text(c, "Surname"),
                text(link, "Relationship"),
                text(link, "ParResp"),
            ));
    }
    for list in out.values_mut() {
        list.sort();
    }
    out
}

/// Each contact as its pupils' UPNs and its fields: equal lists mean the same people, with
/// the same details, linked to the same pupils.
fn people(students: &[Row], contacts: &[Row], student_contacts: &[Row]) -> Vec<Vec<String>> {
    let upn: HashMap<String, String> = students
        .iter()
        .map(|s| (text(s, "Id"), text(s, "UPN")))
        .collect();
    let mut pupils: HashMap<String, Vec<String>> = HashMap::new();
    for link in student_contacts {
        pupils
            .entry(text(link, "ContactId"))
            .or_default()
            .push(upn[&text(link, "StudentId")].clone());
    }
    let mut out: Vec<Vec<String>> = contacts
        .iter()
        .map(|c| {
            let mut upns = pupils.remove(&text(c, "Id")).unwrap_or_default();
            upns.sort();
            let fields = [
                "Title",
                "Forename",
                "Surname",
                "HomeEmail",
                "MobilePhone",
                "HomePhone",
                "AddressBlock",
                "HouseNo",
                "Street",
                "TownOrCity",
                "PostCode",
                "Country",
            ];
            upns.into_iter()
                .chain(fields.iter().map(|f| text(c, f)))
                .collect()
        })
        .collect();
    out.sort();
    out
}

fn round_trip(school: &SyntheticSchool, version: u32) -> CtfExtract {
    let xml = synthetic::ctf::ctf(school, version, "999", "2001");
    let x = read("school.xml", &xml).unwrap();
    assert_eq!(x.version, format!("{version}.0"));
    assert_eq!(
        x.source_school,
        ("999".into(), "2001".into(), school.name.clone())
    );
    assert!(x.warnings.is_empty(), "{:?}", x.warnings);

    let made = school.rows("Students");
    assert!(made.len() >= 600);
    assert_eq!(x.students.len(), made.len());
    let read_by_upn: HashMap<String, &Row> =
        x.students.iter().map(|s| (text(s, "UPN"), s)).collect();
    for m in made {
        let upn = text(m, "UPN");
        let r = read_by_upn[&upn];
        assert_eq!(text(r, "Id"), student_id(&upn));
        for field in [
            "UPN",
            "LegalForename",
            "LegalSurname",
            "Forename",
            "Surname",
            "MiddleName",
            "DateOfBirth",
            "Gender",
            "EthnicityCode",
            "EthnicitySource",
            "FirstLanguageCode",
            "EnrolmentStatus",
            "FsmEligible",
            "SENProvision",
            "InLeaCare",
            "ServiceChild",
            "HouseNo",
            "Street",
            "TownOrCity",
            "PostCode",
            "Country",
            "AddressBlock",
        ] {
            assert_eq!(r.get(field), m.get(field), "{field} of {upn}");
        }
    }
    let (made_contacts, made_links) = (school.rows("Contacts"), school.rows("StudentContacts"));
    assert_eq!(
        links(&x.students, &x.contacts, &x.student_contacts),
        links(made, made_contacts, made_links)
    );
    assert_eq!(x.contacts.len(), made_contacts.len());
    assert_eq!(
        people(&x.students, &x.contacts, &x.student_contacts),
        people(made, made_contacts, made_links)
    );
    x
}

#[test]
fn a_synthetic_school_round_trips_through_ctf_24() {
    let school = synthetic::school("9992001", 640, 24);
    let xml = synthetic::ctf::ctf(&school, 24, "999", "2001");
    assert!(xml.contains("<Gender>"));
    round_trip(&school, 24);
}

#[test]
fn the_sandbox_round_trips_through_ctf_25_and_passes_upload_validation() {
    let school = synthetic::sandbox("9992001", 610, 25, TODAY);
    let xml = synthetic::ctf::ctf(&school, 25, "999", "2001");
    assert!(xml.contains("<Sex>") && !xml.contains("<Gender>"));
    let x = round_trip(&school, 25);
    let body = serde_json::to_vec(&x.upload_body()).unwrap();
    let upload =
        rollcall_core::dataset::parse_upload(rollcall_core::catalogue::Catalogue::get(), &body)
            .unwrap();
    assert!(upload.ignored.is_empty(), "{:?}", upload.ignored);
    assert!(upload.warnings.is_empty(), "{:?}", upload.warnings);
}

#[test]
fn the_same_file_read_twice_gives_identical_ids() {
    let school = synthetic::school("9992001", 300, 7);
    let xml = synthetic::ctf::ctf(&school, 25, "999", "2001");
    let a = read("school.xml", &xml).unwrap();
    let b = read_ctf(Path::new("school.xml"), xml.as_bytes()).unwrap();
    assert_eq!(a, b);
    let ids = |rows: &[Row]| rows.iter().map(|r| text(r, "Id")).collect::<Vec<_>>();
    assert_eq!(ids(&a.contacts), ids(&b.contacts));
    let mut unique = ids(&a.contacts);
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), a.contacts.len());
}

// ---------------------------------------------------------------- contacts

#[test]
fn parents_with_the_same_name_and_no_shared_phone_email_or_address_stay_two_contacts() {
    let xml = ctf(
        "25.0",
        &[
            pupil(
                "A999200124001",
                "Amy",
                &bs7666("3", "ZZ1 1AA"),
                &sarah(1, "07700 900001", "sarah1@example.org", AS_PUPIL),
            ),
            pupil(
                "B999200124002",
                "Beth",
                &bs7666("9", "ZZ2 2BB"),
                &sarah(1, "07700 900002", "sarah2@example.org", AS_PUPIL),
            ),
        ]
        .concat(),
    );
    let x = read("namesakes.xml", &xml).unwrap();
    assert_eq!(x.contacts.len(), 2);
    assert_ne!(x.contacts[0]["Id"], x.contacts[1]["Id"]);
    assert_eq!(x.student_contacts.len(), 2);
    assert_eq!(x.contacts[0]["Forename"], "Sarah");
    assert_eq!(x.contacts[1]["Forename"], "Sarah");
}

#[test]
fn a_parent_under_two_siblings_becomes_one_contact_whatever_the_order_of_pupils() {
    // The same mother, her phone written two ways; the siblings live apart.
    let amy = pupil(
        "A999200124001",
        "Amy",
        &bs7666("3", "ZZ1 1AA"),
        &sarah(1, "07700 900001", "sarah@example.org", AS_PUPIL),
    );
    let beth = pupil(
        "B999200124002",
        "Beth",
        &bs7666("9", "ZZ2 2BB"),
        &sarah(2, "+44 7700 900001", "other@example.org", ""),
    );
    let x = read(
        "siblings.xml",
        &ctf("25.0", &[amy.clone(), beth.clone()].concat()),
    )
    .unwrap();
    assert_eq!(x.contacts.len(), 1, "{:?}", x.contacts);
    let id = text(&x.contacts[0], "Id");
    let ids: Vec<String> = x
        .student_contacts
        .iter()
        .map(|l| text(l, "ContactId"))
        .collect();
    assert_eq!(ids, [id.clone(), id.clone()]);
    assert_eq!(x.student_contacts[1]["Priority"], 2);
    assert_eq!(
        text(&x.student_contacts[0], "Id"),
        format!("{}.{id}", student_id("A999200124001"))
    );
    // The first pupil's details of her (by UPN) win: her address is Amy's.
    assert_eq!(x.contacts[0]["HouseNo"], "3");
    assert_eq!(x.contacts[0]["HomeEmail"], "sarah@example.org");

    let swapped = read("siblings.xml", &ctf("25.0", &[beth, amy].concat())).unwrap();
    assert_eq!(text(&swapped.contacts[0], "Id"), id);
    assert_eq!(swapped.contacts, x.contacts);
}

#[test]
fn a_shared_address_alone_is_evidence_but_a_shared_name_alone_is_not() {
    // Twins at one address; their father is listed without phone or e-mail under both.
    let dad = "<Contact><Order>1</Order><Title>Mr</Title><Surname>Smith</Surname>\
               <Forename>Tom</Forename><Relationship>PAF</Relationship>\
               <Responsibility>true</Responsibility>\
               <Address><AddressAsPupil>true</AddressAsPupil></Address></Contact>";
    let no_address = "<Contact><Order>2</Order><Surname>Smith</Surname><Forename>Jo</Forename>\
                      <Relationship>CAR</Relationship><Responsibility>false</Responsibility>\
                      </Contact>";
    let contacts = format!("{dad}{no_address}");
    let xml = ctf(
        "24.0",
        &[
            pupil(
                "A999200124001",
                "Amy",
                &bs7666("  7  ", "ZZ1 1AA"),
                &contacts,
            ),
            pupil("A999200124003", "Ann", &bs7666("7", "zz11aa"), &contacts),
        ]
        .concat(),
    );
    let x = read("twins.xml", &xml).unwrap();
    // One father (same address), two carers called Jo Smith (nothing shared but the name).
    assert_eq!(x.contacts.len(), 3, "{:?}", x.contacts);
    let father: Vec<&Row> = x
        .student_contacts
        .iter()
        .filter(|l| l["Relationship"] == "Father")
        .collect();
    assert_eq!(father.len(), 2);
    assert_eq!(father[0]["ContactId"], father[1]["ContactId"]);
}

#[test]
fn two_contacts_of_one_pupil_are_never_merged() {
    let contacts = [
        sarah(1, "07700 900001", "sarah@example.org", AS_PUPIL),
        sarah(2, "07700 900001", "sarah@example.org", AS_PUPIL),
    ]
    .concat();
    let xml = ctf(
        "25.0",
        &pupil("A999200124001", "Amy", &bs7666("3", "ZZ1 1AA"), &contacts),
    );
    let x = read("twice.xml", &xml).unwrap();
    assert_eq!(x.contacts.len(), 2);
    assert_ne!(x.contacts[0]["Id"], x.contacts[1]["Id"]);
    // The same again twice gives the same ids.
    assert_eq!(read("twice.xml", &xml).unwrap(), x);
}

// ---------------------------------------------------------------- mapping

#[test]
fn the_fields_follow_the_reference_mapping() {
    let xml = ctf(
        "24.0",
        r#"    <Pupil>
      <UPN> k999200124001 </UPN>
      <UniqueLearnerNumber>4712938500</UniqueLearnerNumber>
      <Surname>O'Connor</Surname>
      <Forename>Siobh&#225;n</Forename>
      <DOB>2015-03-14</DOB>
      <Gender>f</Gender>
      <BasicDetails>
        <FormerUPN>E999200123099</FormerUPN>
        <PreferredForename>Shiv</PreferredForename>
        <MiddleNames>Mary Aoife</MiddleNames>
        <NCyearActual>6</NCyearActual>
        <Ethnicity>WIRI</Ethnicity>
        <EthnicitySource>P</EthnicitySource>
        <Languages><Type><LanguageType>A</LanguageType><Language>FRE</Language></Type>
          <Type><LanguageType>F</LanguageType><Language>ENG</Language></Type></Languages>
        <ServiceChild>N</ServiceChild>
        <MedicalFlag>false</MedicalFlag>
        <EnrolStatus>C</EnrolStatus>
      </BasicDetails>
      <FSMhistory>
        <FSMinstance><FSMstartDate>2021-01-11</FSMstartDate><FSMendDate>2022-07-19</FSMendDate><UKcountry>ENG</UKcountry></FSMinstance>
        <FSMinstance><FSMstartDate>2023-09-05</FSMstartDate><UKcountry>ENG</UKcountry></FSMinstance>
      </FSMhistory>
      <LookedAfter><InCare>true</InCare><CareAuthority>999</CareAuthority></LookedAfter>
      <SENhistory>
        <SEN><StartDate>2022-01-10</StartDate><SENprovision>N</SENprovision><EndDate>2024-09-03</EndDate></SEN>
        <SEN><StartDate>2024-09-04</StartDate><SENprovision>K</SENprovision></SEN>
        <SENneeds><SENneed><SENtypeRank>1</SENtypeRank><SENtype>SPLD</SENtype></SENneed></SENneeds>
      </SENhistory>
      <Address>
        <BS7666Address>
          <SAON>Flat 2</SAON>
          <PAON>  14  </PAON>
          <Street>Quarry Lane</Street>
          <Locality>Upper Brookton</Locality>
          <AdministrativeArea>Testshire</AdministrativeArea>
          <PostTown>Brookton</PostTown>
        </BS7666Address>
        <PostCode>ZZ1 4QL</PostCode>
        <Country>United Kingdom</Country>
      </Address>
      <Contacts>
        <Contact>
          <Order>2</Order>
          <Title>Mr</Title>
          <Surname>D'Arcy &amp; Sons</Surname>
          <Forename>Ciar&#225;n</Forename>
          <Gender>M</Gender>
          <Relationship>STF</Relationship>
          <Responsibility>false</Responsibility>
          <Address>
            <AddressLines><AddressLine1>3 Orchard Court</AddressLine1><AddressLine2>Brookton</AddressLine2></AddressLines>
            <PostCode>ZZ2 4HB</PostCode>
          </Address>
          <Phones><Phone><TelephoneType>W</TelephoneType><PhoneNo>01632 960102</PhoneNo></Phone></Phones>
        </Contact>
        <Contact>
          <Order>1</Order>
          <Title>Mrs</Title>
          <Surname>O'Connor</Surname>
          <Forename>Niamh</Forename>
          <Sex>F</Sex>
          <Relationship>PAM</Relationship>
          <Responsibility>true</Responsibility>
          <Address><AddressAsPupil>true</AddressAsPupil></Address>
          <Phones>
            <Phone><TelephoneType>M</TelephoneType><PhoneNo>07700 900101</PhoneNo></Phone>
            <Phone><TelephoneType>H</TelephoneType><PhoneNo>01632 960001</PhoneNo></Phone>
          </Phones>
          <Email> niamh.oconnor@example.org </Email>
        </Contact>
        <Contact>
          <Order>3</Order>
          <Surname>Gon&#231;alves</Surname>
          <Forename>In&#234;s</Forename>
          <Relationship>FAM</Relationship>
          <Responsibility>false</Responsibility>
        </Contact>
      </Contacts>
      <Attendance><YearData><Year>2025</Year><SessionsPossible>380</SessionsPossible></YearData></Attendance>
    </Pupil>
"#,
    );
    let x = read("sample.xml", &xml).unwrap();
    assert!(x.warnings.is_empty(), "{:?}", x.warnings);
    assert_eq!(x.version, "24.0");
    let s = &x.students[0];
    let expected = json!({
        "Id": student_id("K999200124001"), "UPN": "K999200124001", "FormerUPN": "E999200123099",
        "UniqueLearnerNumber": "4712938500", "Forename": "Shiv", "Surname": "O'Connor",
        "LegalForename": "Siobhán", "LegalSurname": "O'Connor", "MiddleName": "Mary Aoife",
        "DateOfBirth": "2015-03-14", "Gender": "F", "EthnicityCode": "WIRI", "EthnicitySource": "P",
        "FirstLanguageCode": "ENG", "EnrolmentStatus": "C", "FsmEligible": 1, "SENProvision": "K",
        "InLeaCare": 1, "LeaCareAuthority": "999", "ServiceChild": 0,
        "AddressBlock": "Flat 2\n14 Quarry Lane\nUpper Brookton\nBrookton\nTestshire\nZZ1 4QL",
        "HouseNo": "14", "Apartment": "Flat 2", "Street": "Quarry Lane", "District": "Upper Brookton",
        "TownOrCity": "Brookton", "County": "Testshire", "PostCode": "ZZ1 4QL", "Country": "United Kingdom",
    });
    assert_eq!(&Value::Object(s.clone()), &expected);

    // Contacts in Order: mother, step-father, other family member.
    let relationships: Vec<String> = x
        .student_contacts
        .iter()
        .map(|l| text(l, "Relationship"))
        .collect();
    assert_eq!(
        relationships,
        ["Mother", "Step-father", "Other family member"]
    );
    let priorities: Vec<String> = x
        .student_contacts
        .iter()
        .map(|l| text(l, "Priority"))
        .collect();
    assert_eq!(priorities, ["1", "2", "3"]);
    let par_resp: Vec<String> = x
        .student_contacts
        .iter()
        .map(|l| text(l, "ParResp"))
        .collect();
    assert_eq!(par_resp, ["1", "0", "0"]);
    let mother = &x.contacts[0];
    assert_eq!(mother["Forename"], "Niamh");
    assert_eq!(mother["MobilePhone"], "07700 900101");
    assert_eq!(mother["HomePhone"], "01632 960001");
    assert_eq!(mother["HomeEmail"], "niamh.oconnor@example.org");
    for field in [
        "AddressBlock",
        "HouseNo",
        "Apartment",
        "Street",
        "District",
        "TownOrCity",
        "County",
        "PostCode",
    ] {
        assert_eq!(mother[field], s[field], "AddressAsPupil copies {field}");
    }
    let step = &x.contacts[1];
    assert_eq!(step["Surname"], "D'Arcy & Sons");
    assert_eq!(step["Forename"], "Ciarán");
    assert_eq!(step["WorkPhone"], "01632 960102");
    assert_eq!(step["AddressBlock"], "3 Orchard Court\nBrookton\nZZ2 4HB");
    assert_eq!(step["PostCode"], "ZZ2 4HB");
    assert!(step.get("HouseNo").is_none());
    let aunt = &x.contacts[2];
    assert_eq!(aunt["Forename"], "Inês");
    assert_eq!(aunt["Surname"], "Gonçalves");
    assert!(aunt.get("AddressBlock").is_none());
    assert!(aunt.get("Title").is_none());
}

#[test]
fn free_meals_that_ended_give_the_end_date_and_sex_or_gender_is_read_at_either_version() {
    let pupil = |version: &str, tag: &str| {
        ctf(
            version,
            &format!(
                "<Pupil><UPN>A999200124001</UPN><Surname>Smith</Surname><Forename>Amy</Forename>\
                 <DOB>2014-05-01</DOB><{tag}>M</{tag}><FSMhistory><FSMinstance>\
                 <FSMstartDate>2021-01-11</FSMstartDate><FSMendDate>2024-07-19</FSMendDate>\
                 </FSMinstance><FSMinstance><FSMstartDate>2019-01-11</FSMstartDate>\
                 <FSMendDate>2020-07-19</FSMendDate></FSMinstance></FSMhistory></Pupil>"
            ),
        )
    };
    for (version, tag) in [
        ("19.0", "Gender"),
        ("24.0", "Sex"),
        ("25.0", "Gender"),
        ("26.0", "Sex"),
    ] {
        let x = read("fsm.xml", &pupil(version, tag)).unwrap();
        let s = &x.students[0];
        assert_eq!(s["Gender"], "M", "{version} {tag}");
        assert_eq!(s["FsmEligible"], 0);
        assert_eq!(s["FsmEndDate"], "2024-07-19");
        assert!(
            s.get("SENProvision").is_none(),
            "no SENhistory, no SENProvision"
        );
    }
}

// ---------------------------------------------------------------- errors and warnings

/// The 1-based line of the first line of `xml` containing `needle` after `after`.
fn line_of(xml: &str, after: &str, needle: &str) -> u64 {
    let start = xml.find(after).unwrap();
    let at = start + xml[start..].find(needle).unwrap();
    xml[..at].matches('\n').count() as u64 + 1
}

#[test]
fn an_unclosed_element_is_an_error_naming_the_file_the_element_and_its_line() {
    let good = pupil("A999200124001", "Amy", &bs7666("3", "ZZ1 1AA"), "");
    let broken = pupil("B999200124002", "Beth", &bs7666("9", "ZZ2 2BB"), "")
        .replace("<Surname>Smith</Surname>", "<Surname>Smith");
    let xml = ctf("25.0", &[good, broken].concat());
    let line = line_of(&xml, "B999200124002", "<Surname>");
    let e = read("exports/broken.xml", &xml).unwrap_err();
    assert_eq!(e.kind, CtfErrorKind::Malformed);
    assert_eq!(e.element, "CTfile/CTFpupilData/Pupil[2]/Surname");
    assert_eq!(e.line, Some(line));
    let message = e.to_string();
    assert!(
        message.starts_with(&format!(
            "exports/broken.xml:{line}: CTfile/CTFpupilData/Pupil[2]/Surname: "
        )),
        "{message}"
    );
    assert!(message.contains("not closed"), "{message}");
}

#[test]
fn a_file_cut_short_is_an_error_naming_what_is_left_open() {
    let xml = ctf(
        "25.0",
        &pupil("A999200124001", "Amy", &bs7666("3", "ZZ1 1AA"), ""),
    );
    let cut = &xml[..xml.find("<DOB>").unwrap() + 8];
    let e = read("cut.xml", cut).unwrap_err();
    assert_eq!(e.kind, CtfErrorKind::Malformed);
    assert!(e.element.starts_with("CTfile/CTFpupilData/Pupil[1]"), "{e}");
    assert!(e.to_string().starts_with("cut.xml:"), "{e}");
}

#[test]
fn ctf_18_and_an_unreadable_version_are_refused() {
    let body = pupil("A999200124001", "Amy", &bs7666("3", "ZZ1 1AA"), "");
    let xml = ctf("18.0", &body);
    let e = read("old.xml", &xml).unwrap_err();
    assert_eq!(e.kind, CtfErrorKind::Version);
    assert_eq!(e.element, "CTfile/Header/CTFversion");
    assert_eq!(e.line, Some(line_of(&xml, "<Header>", "<CTFversion>")));
    let message = e.to_string();
    assert!(
        message.contains("18.0") && message.contains("19.0"),
        "{message}"
    );
    let e = read("odd.xml", &ctf("twenty-five", &body)).unwrap_err();
    assert_eq!(e.kind, CtfErrorKind::Version);
    assert!(e.to_string().contains("twenty-five"), "{e}");
    let e = read(
        "none.xml",
        &ctf("25.0", &body).replace("<CTFversion>25.0</CTFversion>", ""),
    )
    .unwrap_err();
    assert_eq!(e.kind, CtfErrorKind::Version);
}

#[test]
fn not_a_ctf_is_refused() {
    let e = read("atf.xml", "<ATfile><Header/></ATfile>").unwrap_err();
    assert_eq!(e.kind, CtfErrorKind::NotCtf);
    assert!(e.to_string().contains("admissions"), "{e}");
    assert_eq!(
        read("empty.xml", "").unwrap_err().kind,
        CtfErrorKind::NotCtf
    );
}

#[test]
fn a_pupil_without_upn_a_bad_date_and_a_duplicate_upn_are_errors_saying_what_to_fix() {
    let amy = pupil("A999200124001", "Amy", &bs7666("3", "ZZ1 1AA"), "");
    let no_upn = pupil("", "Beth", &bs7666("9", "ZZ2 2BB"), "");
    let xml = ctf("25.0", &[amy.clone(), no_upn].concat());
    let e = read("u.xml", &xml).unwrap_err();
    assert_eq!(e.kind, CtfErrorKind::MissingUpn);
    assert_eq!(e.element, "CTfile/CTFpupilData/Pupil[2]");
    assert_eq!(e.line, Some(line_of(&xml, "Amy", "<Pupil>")));
    assert!(e.to_string().contains("UPN"), "{e}");

    let bad = amy.replace("2014-05-01", "2014-02-30");
    let xml = ctf("25.0", &[amy.clone(), bad].concat());
    let e = read("d.xml", &xml).unwrap_err();
    assert_eq!(e.kind, CtfErrorKind::BadDate);
    assert_eq!(e.element, "CTfile/CTFpupilData/Pupil[2]/DOB");
    assert_eq!(e.line, Some(line_of(&xml, "2014-02-30", "2014-02-30")));
    assert!(e.to_string().contains("yyyy-mm-dd"), "{e}");

    let twin = amy.replace("Amy", "Ann");
    let e = read("dup.xml", &ctf("25.0", &[amy, twin].concat())).unwrap_err();
    assert_eq!(e.kind, CtfErrorKind::DuplicateUpn);
    assert_eq!(e.element, "CTfile/CTFpupilData/Pupil[2]/UPN");
    assert!(e.to_string().contains("Pupil[1]"), "{e}");

    let order =
        sarah(1, "07700 900001", "s@example.org", AS_PUPIL).replace("<Order>1<", "<Order>first<");
    let xml = ctf(
        "25.0",
        &pupil("A999200124001", "Amy", &bs7666("3", "ZZ1 1AA"), &order),
    );
    let e = read("o.xml", &xml).unwrap_err();
    assert_eq!(e.kind, CtfErrorKind::BadValue);
    assert_eq!(
        e.element,
        "CTfile/CTFpupilData/Pupil[1]/Contacts/Contact[1]/Order"
    );
}

#[test]
fn unknown_elements_are_warnings_once_per_path_not_errors() {
    let supp = "<SuppInfo><Religion>Christian</Religion></SuppInfo>";
    let contact = sarah(1, "07700 900001", "s@example.org", AS_PUPIL)
        .replace("</Contact>", &format!("{supp}</Contact>"));
    let with_supp = |upn: &str| {
        pupil(upn, "Amy", &bs7666("3", "ZZ1 1AA"), &contact)
            .replace("</Pupil>", &format!("{supp}<Shoe>9</Shoe></Pupil>"))
    };
    let xml = ctf(
        "25.0",
        &[with_supp("A999200124001"), with_supp("A999200124002")].concat(),
    );
    let x = read("vendor.xml", &xml).unwrap();
    assert_eq!(x.students.len(), 2);
    assert_eq!(x.contacts.len(), 1, "siblings' shared mother");
    assert_eq!(x.warnings.len(), 3, "{:#?}", x.warnings);
    let pupil_supp = x
        .warnings
        .iter()
        .find(|w| w.contains("CTfile/CTFpupilData/Pupil[1]/SuppInfo"))
        .expect("a warning for the pupils' SuppInfo");
    assert!(pupil_supp.starts_with("vendor.xml:"), "{pupil_supp}");
    assert!(pupil_supp.contains("2 times"), "{pupil_supp}");
    assert!(x.warnings.iter().any(|w| w.contains("Contact[1]/SuppInfo")));
    assert!(x.warnings.iter().any(|w| w.contains("<Shoe>")));
}
