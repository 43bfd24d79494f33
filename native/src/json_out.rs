//! JSON text as orjson writes it, byte for byte: the outputs of `influence replay` must not
//! depend on which core wrote them (tests/test_native.py compares the bytes).
//!
//! orjson's choices, which these follow: floats in their shortest round-trip digits (ryu),
//! positional from 1e-5 up to below 1e16 and `1e+16` / `1e-6` style outside, always with a
//! `.0` or a fraction; NaN and infinities as `null`; strings as UTF-8 with only `"`, `\` and
//! control characters escaped (`\n`, `\t`, `\r`, `\b`, `\f`, else `\u00XX`, lower-case hex);
//! no spaces. `tests/test_native.py` checks these against the installed orjson.

/// Appends `x` as orjson writes a float.
pub fn float(out: &mut Vec<u8>, x: f64) {
    if !x.is_finite() {
        out.extend_from_slice(b"null");
        return;
    }
    let mut buffer = ryu::Buffer::new();
    let text = buffer.format_finite(x).as_bytes();
    // ryu writes `1e16`; orjson (like Python) signs a positive exponent: `1e+16`
    match text.iter().position(|b| *b == b'e') {
        Some(e) if text.get(e + 1) != Some(&b'-') => {
            out.extend_from_slice(&text[..=e]);
            out.push(b'+');
            out.extend_from_slice(&text[e + 1..]);
        }
        _ => out.extend_from_slice(text),
    }
}

/// Appends `n` in decimal.
pub fn integer(out: &mut Vec<u8>, n: i64) {
    // most counts in a snapshot line are single digits, most of them 0
    if (0..10).contains(&n) {
        out.push(b'0' + n as u8);
        return;
    }
    let mut buffer = [0; 20];
    out.extend_from_slice(format_integer(&mut buffer, n));
}

/// `n`'s decimal digits, written from the end of `buffer`, with its sign.
fn format_integer(buffer: &mut [u8; 20], n: i64) -> &[u8] {
    let mut at = buffer.len();
    let mut rest = n.unsigned_abs();
    loop {
        at -= 1;
        buffer[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if n < 0 {
        at -= 1;
        buffer[at] = b'-';
    }
    &buffer[at..]
}

/// Appends `text` as a quoted JSON string.
pub fn string(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    let bytes = text.as_bytes();
    let mut plain = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\t' => b"\\t",
            b'\r' => b"\\r",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[plain..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 15) as usize]);
        } else {
            out.extend_from_slice(escape);
        }
        plain = i + 1;
    }
    out.extend_from_slice(&bytes[plain..]);
    out.push(b'"');
}

/// A JSON object being written: `{`, then each field's `"name":` (commas between) for its
/// value to follow, then `}` on `close`. Names are fixed ASCII that needs no escaping.
pub struct Object<'a> {
    out: &'a mut Vec<u8>,
    empty: bool,
}

impl<'a> Object<'a> {
    pub fn open(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Object { out, empty: true }
    }

    /// Writes the field's name; its value goes into the returned buffer.
    pub fn field(&mut self, name: &str) -> &mut Vec<u8> {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        self.out.push(b'"');
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }

    pub fn close(self) {
        self.out.push(b'}');
    }
}

/// Appends `items` as a JSON array, each written by `item`.
pub fn array<T>(out: &mut Vec<u8>, items: &[T], item: impl Fn(&mut Vec<u8>, &T)) {
    out.push(b'[');
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        item(out, x);
    }
    out.push(b']');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(write: impl Fn(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        write(&mut out);
        String::from_utf8(out).expect("UTF-8")
    }

    #[test]
    fn floats_as_orjson_writes_them() {
        // orjson.dumps(x) in orjson 3.13
        for (x, orjson) in [
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (123456789012345680.0, "1.2345678901234568e+17"),
            (1e-5, "0.00001"),
            (1e-6, "1e-6"),
            (2.5e-5, "0.000025"),
            (-0.0, "-0.0"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (100.0, "100.0"),
            (0.1, "0.1"),
            (12345.678, "12345.678"),
            (9007199254740992.0, "9007199254740992.0"),
            (f64::NAN, "null"),
            (f64::NEG_INFINITY, "null"),
        ] {
            assert_eq!(text(|out| float(out, x)), orjson, "{x:?}");
        }
    }

    #[test]
    fn integers() {
        for n in [0, 7, 9, 10, -1, -7, 1341100972000, i64::MIN, i64::MAX] {
            assert_eq!(text(|out| integer(out, n)), n.to_string());
        }
    }

    #[test]
    fn strings_as_orjson_escapes_them() {
        let written = text(|out| string(out, "a\x00\x01\x1f\x7f/\\\"\u{2028}é\t\n\r\x08\x0c"));
        assert_eq!(
            written,
            "\"a\\u0000\\u0001\\u001f\x7f/\\\\\\\"\u{2028}é\\t\\n\\r\\b\\f\""
        );
    }
}
