// Highlighting search matches by the server's rule (instachat.MatchesTerm and
// TermOccurrences): terms are the query split on white space and lower-cased;
// a term of 3 or more characters matches anywhere, case-insensitively; a
// shorter one only at the start of a word (letters and digits make words).
// Results are built as text nodes and <mark> elements, never as HTML.

export const MIN_SUBSTRING_TERM = 3;

const wordRune = /^[\p{L}\p{Nd}]$/u;

// parseTerms splits a query as instachat.ParseSearchTerms does.
export function parseTerms(q) {
  return lower(q).text.split(/[\s\0]+/u).filter(Boolean);
}

// lower lower-cases s one code point at a time, as Go's strings.ToLower does
// (no context-dependent rules), and maps each UTF-16 index of the result
// back to the index in s where its code point came from.
function lower(s) {
  let text = '';
  const from = [];
  let i = 0;
  for (const ch of s) {
    // Go maps U+0130 by its simple mapping to "i"; JavaScript adds a dot.
    const l = ch === '\u0130' ? 'i' : ch.toLowerCase();
    for (let k = 0; k < l.length; k++) from.push(i);
    text += l;
    i += ch.length;
  }
  from.push(i);
  return { text, from };
}

function codePointBefore(s, at) {
  if (at === 0) return '';
  const c = s.charCodeAt(at - 1);
  if (c >= 0xdc00 && c <= 0xdfff && at >= 2) return String.fromCodePoint(s.codePointAt(at - 2));
  return s[at - 1];
}

// matchRanges returns the [start, end) UTF-16 ranges of body that the terms
// match, merged and in order.
export function matchRanges(body, terms) {
  const { text, from } = lower(body);
  const ranges = [];
  for (const term of terms) {
    if (!term) continue;
    const long = [...term].length >= MIN_SUBSTRING_TERM;
    for (let i = 0; ;) {
      const at = text.indexOf(term, i);
      if (at < 0) break;
      const prev = codePointBefore(text, at);
      if (long || at === 0 || !wordRune.test(prev)) ranges.push([from[at], from[at + term.length]]);
      i = at + (text.codePointAt(at) > 0xffff ? 2 : 1);
    }
  }
  ranges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const merged = [];
  for (const r of ranges) {
    const last = merged[merged.length - 1];
    if (last && r[0] <= last[1]) last[1] = Math.max(last[1], r[1]);
    else merged.push([...r]);
  }
  return merged;
}

// highlighted returns a fragment of body with every match in a <mark>.
export function highlighted(body, terms) {
  const frag = document.createDocumentFragment();
  let at = 0;
  for (const [start, end] of matchRanges(body, terms)) {
    if (start > at) frag.append(document.createTextNode(body.slice(at, start)));
    const mark = document.createElement('mark');
    mark.textContent = body.slice(start, end);
    frag.append(mark);
    at = end;
  }
  if (at < body.length) frag.append(document.createTextNode(body.slice(at)));
  return frag;
}
