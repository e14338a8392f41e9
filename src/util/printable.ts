// Text an untrusted party wrote (an instance's NACK), made safe to show on a terminal or in a log:
// without control characters (terminal escapes), bidi overrides or zero-width characters, which
// could rewrite or hide what an operator sees. Newlines and tabs stay (one issue per line).

export function printable(text: string): string {
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g, '')
}
