//! Lower case as `char::to_lowercase` and `str::to_lowercase`, from a compact table of our
//! own (lowercase_table.rs): core's tables behind those two cost about 17 KB of .wasm.
//!
//! The table is generated from core itself by `write_lowercase_table` below, and the tests
//! check every scalar value against core (alone and around a capital sigma, whose lower case
//! depends on its neighbours: `str::to_lowercase`'s one contextual rule, Final_Sigma).

#[path = "lowercase_table.rs"]
mod table;

/// `c.to_lowercase()`: İ (U+0130) is the one character with two.
pub fn lower_char(c: char) -> impl Iterator<Item = char> {
    let (first, second) = match c {
        'A'..='Z' => (c.to_ascii_lowercase(), None),
        '\u{130}' => ('i', Some('\u{307}')),
        _ => (shifted(c).unwrap_or(c), None),
    };
    std::iter::once(first).chain(second)
}

/// The one-character lower case of a non-ASCII character, from the runs of equal shifts.
fn shifted(c: char) -> Option<char> {
    let cp = c as u32;
    let after = table::RUNS.partition_point(|&(head, _)| head >> 9 <= cp);
    let &(head, shift) = table::RUNS.get(after.checked_sub(1)?)?;
    let offset = cp - (head >> 9);
    let last = head & 0xFF;
    // every other code point (upper and lower case alternating) or each one
    let inside = if head & 0x100 != 0 {
        offset.is_multiple_of(2) && offset / 2 <= last
    } else {
        offset <= last
    };
    if !inside {
        return None;
    }
    cp.checked_add_signed(shift).and_then(char::from_u32)
}

/// For Final_Sigma: a character is skipped (case-ignorable), decides (cased) or ends the word.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Class {
    Other = 0,
    Cased = 1,
    Ignorable = 2,
}

fn class(c: char) -> Class {
    let cp = c as u32;
    // the ranges of c's plane (each plane's first one starts at its first code point)
    let plane = (cp >> 16) as usize;
    let (Some(&from), Some(&to)) = (table::PLANES.get(plane), table::PLANES.get(plane + 1)) else {
        return Class::Other;
    };
    let (from, to) = (usize::from(from), usize::from(to));
    let starts = table::STARTS.get(from..to).unwrap_or_default();
    let low = (cp & 0xFFFF) as u16;
    let Some(range) = starts.partition_point(|start| *start <= low).checked_sub(1) else {
        return Class::Other;
    };
    let i = from + range;
    match table::CLASSES.get(i / 4).map(|b| b >> (i % 4 * 2) & 3) {
        Some(1) => Class::Cased,
        Some(2) => Class::Ignorable,
        _ => Class::Other,
    }
}

fn ignorable_then_cased(mut chars: impl Iterator<Item = char>) -> bool {
    chars
        .find(|c| class(*c) != Class::Ignorable)
        .is_some_and(|c| class(c) == Class::Cased)
}

/// `s.to_lowercase()`.
pub fn to_lowercase(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.char_indices() {
        if c == 'Σ' {
            // final (ς) after a cased letter and not before one, case-ignorable ones skipped
            let before = s.get(..i).unwrap_or_default().chars().rev();
            let after = s.get(i + 'Σ'.len_utf8()..).unwrap_or_default().chars();
            let last = ignorable_then_cased(before) && !ignorable_then_cased(after);
            out.push(if last { 'ς' } else { 'σ' });
        } else {
            out.extend(lower_char(c));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write as _;

    fn scalars() -> impl Iterator<Item = char> {
        (0..=0x10FFFF).filter_map(char::from_u32)
    }

    /// A Final_Sigma class read off core's `str::to_lowercase`: "xΣ" ends in ς when x is cased
    /// (and not case-ignorable); "AxΣ" does when x is cased or case-ignorable.
    fn core_class(x: char) -> Class {
        let final_after = |s: String| s.to_lowercase().ends_with('ς');
        if final_after(format!("{x}Σ")) {
            Class::Cased
        } else if final_after(format!("A{x}Σ")) {
            Class::Ignorable
        } else {
            Class::Other
        }
    }

    fn write_array(out: &mut String, name: &str, ty: &str, cells: Vec<String>, per_line: usize) {
        writeln!(out, "pub(super) static {name}: [{ty}; {}] = [", cells.len()).unwrap();
        for line in cells.chunks(per_line) {
            writeln!(out, "    {},", line.join(", ")).unwrap();
        }
    }

    fn generate_table() -> String {
        // non-ASCII characters with a one-character lower case other than themselves
        let shifts: Vec<(u32, i64)> = scalars()
            .filter(|c| !c.is_ascii() && *c != '\u{130}')
            .filter_map(|c| {
                let mut lower = c.to_lowercase();
                let l = lower.next()?;
                assert!(lower.next().is_none(), "U+{:04X} has two", c as u32);
                (l != c).then(|| (c as u32, i64::from(u32::from(l)) - i64::from(c as u32)))
            })
            .collect();
        let shift_of = |cp: u32| {
            shifts
                .binary_search_by_key(&cp, |e| e.0)
                .ok()
                .map(|i| shifts[i].1)
        };
        let mut runs: Vec<(u32, i32)> = Vec::new();
        let mut i = 0;
        while i < shifts.len() {
            let (cp, shift) = shifts[i];
            let each = (1..256).take_while(|k| shift_of(cp + k) == Some(shift)).count() + 1;
            let alternate = (1..256)
                .take_while(|k| shift_of(cp + 2 * k) == Some(shift) && shift_of(cp + 2 * k - 1).is_none())
                .count()
                + 1;
            let (len, stride) = if alternate > each {
                (alternate, 1)
            } else {
                (each, 0)
            };
            let len = u32::try_from(len).unwrap();
            runs.push((cp << 9 | stride << 8 | (len - 1), i32::try_from(shift).unwrap()));
            i += usize::try_from(len).unwrap();
        }
        // class ranges, one starting at each plane's first code point
        let (mut starts, mut classes, mut planes) = (Vec::<u16>::new(), Vec::<u8>::new(), Vec::<u16>::new());
        let mut current = None;
        for c in scalars() {
            let class = core_class(c);
            let cp = c as u32;
            if cp & 0xFFFF == 0 {
                planes.push(u16::try_from(starts.len()).unwrap());
            }
            if current != Some(class) || cp & 0xFFFF == 0 {
                starts.push((cp & 0xFFFF) as u16);
                classes.push(class as u8);
                current = Some(class);
            }
        }
        planes.push(u16::try_from(starts.len()).unwrap());
        let classes: Vec<u8> = classes
            .chunks(4)
            .map(|q| q.iter().enumerate().map(|(k, c)| c << (2 * k)).sum())
            .collect();
        let mut out = String::from(
            "//! Generated by `cargo test --lib lowercase::tests::write_lowercase_table -- --ignored`\n\
             //! from core's lower case (see lowercase.rs): do not edit.\n\n\
             /// (first code point << 9 | every other one << 8 | length - 1, shift to add), sorted.\n\
             #[rustfmt::skip]\n",
        );
        writeln!(out, "pub(super) static RUNS: [(u32, i32); {}] = [", runs.len()).unwrap();
        for line in runs.chunks(4) {
            let cells: Vec<String> = line.iter().map(|(h, s)| format!("(0x{h:08X}, {s})")).collect();
            writeln!(out, "    {},", cells.join(", ")).unwrap();
        }
        out.push_str(
            "];\n\n/// Final_Sigma classes of ranges: PLANES[p]..PLANES[p + 1] are plane p's, from\n\
             /// STARTS (the low 16 bits of each first code point) on; CLASSES holds four a byte\n\
             /// (low bits first): 0 other, 1 cased, 2 case-ignorable.\n#[rustfmt::skip]\n",
        );
        write_array(
            &mut out,
            "PLANES",
            "u16",
            planes.iter().map(u16::to_string).collect(),
            12,
        );
        out.push_str("];\n\n#[rustfmt::skip]\n");
        write_array(
            &mut out,
            "STARTS",
            "u16",
            starts.iter().map(|s| format!("0x{s:04X}")).collect(),
            12,
        );
        out.push_str("];\n\n#[rustfmt::skip]\n");
        write_array(
            &mut out,
            "CLASSES",
            "u8",
            classes.iter().map(|c| format!("0x{c:02X}")).collect(),
            16,
        );
        out.push_str("];\n");
        eprintln!(
            "lowercase table: {} runs, {} class ranges",
            runs.len(),
            starts.len()
        );
        out
    }

    const TABLE_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/inspect/lowercase_table.rs");

    #[test]
    #[ignore = "writes src/inspect/lowercase_table.rs"]
    fn write_lowercase_table() {
        std::fs::write(TABLE_FILE, generate_table()).unwrap();
    }

    #[test]
    fn lowercase_table_is_generated() {
        let current = std::fs::read_to_string(TABLE_FILE).unwrap();
        assert!(
            current == generate_table(),
            "run the ignored write_lowercase_table test"
        );
    }

    #[test]
    fn lower_char_equals_core() {
        for c in scalars() {
            assert!(lower_char(c).eq(c.to_lowercase()), "U+{:04X}", c as u32);
            assert_eq!(class(c), core_class(c), "U+{:04X}", c as u32);
        }
    }

    #[test]
    fn to_lowercase_equals_core_around_sigma() {
        for c in scalars() {
            for s in [format!("A{c}Σ"), format!("AΣ{c}A")] {
                assert_eq!(to_lowercase(&s), s.to_lowercase(), "{s:?}");
            }
        }
        for s in [
            "ΟΔΟΣ",
            "ΟΔΟΣ ΚΑΙ",
            "Σ",
            "ΑΣ.",
            "Α'Σ",
            "Σ̈Α",
            "INJECTION",
            "Jailbreak_ÜBER",
            "",
        ] {
            assert_eq!(to_lowercase(s), s.to_lowercase(), "{s:?}");
        }
    }
}
