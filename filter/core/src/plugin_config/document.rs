//! Reading a configuration document as JSON, with the path of the field at
//! fault in every error (both roles' documents go through here).

use super::error::ConfigError;

/// Parses a configuration document (either role's). Errors carry serde_json's
/// message (with line and column) and the path of the field being read when
/// it failed.
pub fn parse_document<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ConfigError> {
    serde_json::from_slice::<T>(bytes).map_err(|error| {
        let offset = byte_offset(bytes, error.line(), error.column());
        ConfigError::new(path_at(bytes, offset), error.to_string())
    })
}

// ----- error location -----
//
// serde_json says *where* in the text an error is (line/column) but not the
// path to it. Re-reading the text up to that point with a tiny scanner that
// only tracks object keys and array indexes gives the path, for every kind of
// error (unknown field, wrong type, duplicate, syntax) and consistently with
// the position in the message.

/// Byte offset of serde_json's one-based line and "bytes read on that line" column.
fn byte_offset(bytes: &[u8], line: usize, column: usize) -> usize {
    if line <= 1 {
        return column.min(bytes.len());
    }
    let line_start = bytes
        .iter()
        .enumerate()
        .filter(|(_, &b)| b == b'\n')
        .nth(line - 2)
        .map_or(bytes.len(), |(newline, _)| newline + 1);
    line_start.saturating_add(column).min(bytes.len())
}

/// One open JSON container while scanning.
enum Frame {
    Object {
        /// The last complete key; cleared by `,`.
        key: Option<String>,
        /// True between `{`/`,` and `:`.
        expecting_key: bool,
    },
    Array {
        index: usize,
        /// True once the element at `index` has begun.
        started: bool,
    },
}

/// The path (`rules[1].app_roles.any_of`) of the value being read at `offset`.
fn path_at(bytes: &[u8], offset: usize) -> String {
    let text = bytes.get(..offset).unwrap_or(bytes);
    let mut stack: Vec<Frame> = Vec::new();
    let mut position = 0;
    while let Some(&byte) = text.get(position) {
        position += 1;
        match byte {
            b'"' => {
                begin_value(&mut stack);
                let (string, complete) = read_string(text, position);
                position = position.saturating_add(string.len()).saturating_add(1);
                if let Some(Frame::Object {
                    key,
                    expecting_key: true,
                }) = stack.last_mut()
                {
                    if complete {
                        *key = Some(decode_key(string));
                    }
                }
            }
            b'{' => {
                begin_value(&mut stack);
                stack.push(Frame::Object {
                    key: None,
                    expecting_key: true,
                });
            }
            b'[' => {
                begin_value(&mut stack);
                stack.push(Frame::Array {
                    index: 0,
                    started: false,
                });
            }
            b'}' | b']' => {
                stack.pop();
            }
            b':' => {
                if let Some(Frame::Object { expecting_key, .. }) = stack.last_mut() {
                    *expecting_key = false;
                }
            }
            b',' => match stack.last_mut() {
                Some(Frame::Object { key, expecting_key }) => {
                    *key = None;
                    *expecting_key = true;
                }
                Some(Frame::Array { index, started }) => {
                    *index += 1;
                    *started = false;
                }
                None => {}
            },
            b' ' | b'\t' | b'\n' | b'\r' => {}
            _ => begin_value(&mut stack),
        }
    }
    render_path(&stack)
}

/// Marks the current array element as begun (a value starts here).
fn begin_value(stack: &mut [Frame]) {
    if let Some(Frame::Array { started, .. }) = stack.last_mut() {
        *started = true;
    }
}

/// The raw bytes of a string starting at `start` (just after its opening
/// quote), and whether its closing quote was seen.
fn read_string(text: &[u8], start: usize) -> (&[u8], bool) {
    let rest = text.get(start..).unwrap_or_default();
    let mut escaped = false;
    for (length, &byte) in rest.iter().enumerate() {
        match byte {
            _ if escaped => escaped = false,
            b'\\' => escaped = true,
            b'"' => return (rest.get(..length).unwrap_or_default(), true),
            _ => {}
        }
    }
    (rest, false)
}

fn decode_key(raw: &[u8]) -> String {
    let quoted = [b"\"", raw, b"\""].concat();
    serde_json::from_slice::<String>(&quoted)
        .unwrap_or_else(|_| String::from_utf8_lossy(raw).into_owned())
}

fn render_path(stack: &[Frame]) -> String {
    let mut path = String::new();
    for frame in stack {
        match frame {
            Frame::Object { key: Some(key), .. } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            Frame::Array {
                index,
                started: true,
            } => path.push_str(&format!("[{index}]")),
            // Nothing deeper can be open before a key or element has begun.
            Frame::Object { key: None, .. } | Frame::Array { started: false, .. } => break,
        }
    }
    path
}
