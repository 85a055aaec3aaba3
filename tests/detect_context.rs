//! Phone numbers recognised by where they sit: under a JSON member or a table column that
//! names them, and the formats that need no context (mobile and toll-free ranges, `+CC(…)`);
//! and the look-alikes that must stay untouched even there.

#![allow(clippy::unwrap_used)]

use mcp_pii_gateway::detect::Detector;

fn keyed<'t>(d: &Detector, text: &'t str, key: Option<&str>) -> Vec<&'t str> {
    let mut out = Vec::new();
    d.find_keyed_into(text, key, &mut out);
    out.iter()
        .inspect(|s| assert_eq!(s.kind.as_str(), "PHONE"))
        .map(|s| &text[s.start..s.end])
        .collect()
}

fn found(d: &Detector, text: &str) -> Vec<String> {
    d.find(text)
        .iter()
        .map(|s| text[s.start..s.end].to_string())
        .collect()
}

#[test]
fn a_key_that_names_a_phone_is_context() {
    let d = Detector::builtin();
    for (key, value) in [
        ("MobilePhone", "0619861964"),
        ("phone", "7384512884"),
        ("phone_number", "1800121746"),
        ("Phone", "+44(0)306 9990505"),
        ("phoneNumber", "8 (7262) 88 30 89"),
        ("Telefonnummer", "030901820"),
        ("fax", "2079460958"),
        ("電話番号", "0312345678"),
        ("Телефон", "4951234567"),
        ("mobilephone", "7384512884"),
        ("tel", "(38)/450-0389"),
    ] {
        assert_eq!(keyed(&d, value, Some(key)), [value], "{key}: {value}");
    }
}

#[test]
fn the_same_values_need_the_key() {
    let d = Detector::builtin();
    for (key, value) in [
        ("amount", "7384512884"),
        ("invoice_no", "7384512884"),
        ("phone_id", "7384512884"),
        ("hotel", "7384512884"),
        ("telemetry", "7384512884"),
        ("microphone", "7384512884"),
    ] {
        assert!(keyed(&d, value, Some(key)).is_empty(), "{key}: {value}");
    }
    assert!(keyed(&d, "7384512884", None).is_empty());
}

#[test]
fn a_key_only_adds() {
    // What the gateway's own checks find without the key stays found with any key.
    let d = Detector::builtin();
    for key in ["order_id", "[CUSTOMER_ID_1]", "invoice", "phone_id", "phone", ""] {
        for value in [
            "(010) 555 0000",
            "0211205385",
            "+44 20 7946 0958",
            "tel 2079460958",
        ] {
            assert_eq!(
                keyed(&d, value, Some(key)),
                keyed(&d, value, None),
                "{key}: {value}"
            );
        }
    }
}

#[test]
fn a_phone_key_does_not_make_look_alikes_phones() {
    let d = Detector::builtin();
    for value in [
        "2024-03-15",
        "2024-03-15T10:20:30Z",
        "192.168.100.200",
        "48.8566123",
        "4111 1111 1111 1111",
        "12345",
        "v1.2.3.4567",
        "order 0612345678",
        "8c3f1a2b-1234-4abc-a123-123456789012",
    ] {
        assert!(keyed(&d, value, Some("phone")).is_empty(), "{value}");
    }
}

#[test]
fn a_csv_or_markdown_header_names_its_column() {
    let d = Detector::builtin();
    let csv = "name,city,phone,customer_id\nPaz Jaén,Mannton,0211205385,4412345678\n\"Lima, Ana\",Porto,7384512884,5512345678\n";
    assert_eq!(found(&d, csv), ["0211205385", "7384512884"]);
    let tsv = "id\tMobilePhone\tcreated\n4412345678\t05023629588\t1700000000\n";
    assert_eq!(found(&d, tsv), ["05023629588"]);
    let md = "| Name | Phone | Visits |\n|---|---|---|\n| Ana | (38)/450-0389 | 7384512884 |\n| Bo | 7384512885 | 12 |\n";
    assert_eq!(found(&d, md), ["(38)/450-0389", "7384512885"]);
    // A blank line ends the table: the next block has its own header.
    let two = "phone;x\n7384512884;1\n\nsize;x\n7384512884;1\n";
    assert_eq!(found(&d, two), ["7384512884"]);
    // Without a header naming it, the column is plain numbers.
    let plain = "name,city,total\nPaz,Mannton,7384512884\n";
    assert!(found(&d, plain).is_empty());
}

#[test]
fn formats_people_paste() {
    let d = Detector::builtin();
    for (text, want) in [
        ("call +90(346)591-8813x5165 today", "+90(346)591-8813x5165"),
        ("+49(4)1509458275", "+49(4)1509458275"),
        ("+44(0)306 9990505", "+44(0)306 9990505"),
        ("请拨打13341212686咨询", "13341212686"),
        ("携帯 09012345678 まで", "09012345678"),
        ("sms.send to=1800126568", "1800126568"),
        ("phone_number: \"1800121746\"", "1800121746"),
        ("Freecall 08001234567", "08001234567"),
        ("0619861964", "0619861964"),
        ("התקשרו 08-7928-227", "08-7928-227"),
    ] {
        assert_eq!(found(&d, text), [want], "{text}");
    }
}

#[test]
fn numeric_tables_stay_untouched() {
    let d = Detector::builtin();
    for text in [
        "Counts: 375 623 6584",
        "Population (985) 880-8774 bytes",
        "transferred 3756236584 bytes",
        "ts=1800121746 level=info",
        "0000123456",
        "iat=1712040316",
        "values 201 555 0123 km",
        // `Ph` in a name is not the abbreviation of phone.
        "Ông Anh Phạm 4283369472",
        // A coordinate pair after a context word.
        "Kontakt: POINT(73.49264 -15.56264)",
        // A placeholder the gateway wrote is not a context word for what follows it.
        "| Ana | [PHONE_3] | 3756236584 |",
    ] {
        assert!(found(&d, text).is_empty(), "{text}: {:?}", found(&d, text));
    }
}

#[test]
fn only_the_phone_beside_look_alikes() {
    let d = Detector::builtin();
    for (text, want) in [
        // A date after a phone number is the nearest word's.
        ("Tel. 030 901820. Datum: 20180219", "030 901820"),
        // Semicolon-separated with a comma in a name: the id column is not the phone column.
        (
            "id;name;Mobile;created\n5670774524;Safitri, M.Farm;0412345671;1771662120\n",
            "0412345671",
        ),
    ] {
        assert_eq!(found(&d, text), [want], "{text}");
    }
}
