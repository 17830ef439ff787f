-- The embedded sequencer keeps idempotency receipts in memory; this table
-- keeps them durable, written by ApplyCreates in the transaction that stores
-- the row, so a retry after a restart is still answered from its receipt
-- (see instachat.Receipt). chat_number is 0 for a chat create. Rows older
-- than the retention are pruned by the server, created_at ordering them.

CREATE TABLE receipts (
	app_token       TEXT    NOT NULL,
	idempotency_key TEXT    NOT NULL,
	chat_number     INTEGER NOT NULL,
	number          INTEGER NOT NULL,
	fingerprint     TEXT    NOT NULL,
	created_at      INTEGER NOT NULL,
	PRIMARY KEY (app_token, idempotency_key)
) WITHOUT ROWID;

CREATE INDEX receipts_created_at ON receipts (created_at);
