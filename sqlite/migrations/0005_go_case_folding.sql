-- Search must match as instachat.MatchesTerm does: a term against the body's
-- lower case by Go's Unicode tables. 0002 indexed the bodies as they are,
-- with the trigram tokenizer folding case by SQLite's tables, which are not
-- Go's: of the 1,433 runes Go lower-cases, a message holding one of 391 was
-- missed ("İstanbul" by "istanbul", Cherokee, Georgian Mtavruli, Adlam…),
-- and "οδος" found "ΟΔΟΣ", ς folded into σ (ſ into s, µ into μ).
--
-- Here the index holds each body's Go lower case, instachat_lower(body) (see
-- indexText in search.go), with case_sensitive 1, so that a term, lower-cased
-- by instachat.ParseSearchTerms, is a phrase of the very trigrams
-- MatchesTerm looks for; SearchMessages then decides every candidate by
-- MatchesTerm itself. Rowids, the scopes and the delete trigger of 0002 stay
-- as they are: the trigger names the table, which it finds again here.

DROP TABLE message_index;

CREATE VIRTUAL TABLE message_index USING fts5 (
	body,
	content = '',
	contentless_delete = 1,
	tokenize = 'trigram case_sensitive 1'
);

-- The merge settings of 0002 and 0004, which lived in the dropped table.
INSERT INTO message_index (message_index, rank) VALUES ('automerge', 16);
INSERT INTO message_index (message_index, rank) VALUES ('crisismerge', 64);

-- As in 0002: in rowid order, numbers beyond the index's 32 bits left out,
-- then merged into one segment.
INSERT INTO message_index (rowid, body)
SELECT s.id << 32 | (0xffffffff - m.number), instachat_lower(m.body)
FROM search_scopes s JOIN messages m ON m.app_token = s.app_token AND m.chat_number = s.chat_number
WHERE m.number BETWEEN 1 AND 0xffffffff
ORDER BY s.id, m.number DESC;

INSERT INTO message_index (message_index) VALUES ('optimize');
