-- The erasures a search engine apart from the store (Elasticsearch) still
-- owes of deleted messages (see instachat.SearchErasures): written in the
-- transaction of DeleteMessage when the store is opened with
-- Options.SearchErasures, deleted once the engine holds the message's
-- tombstone (by the API right after the deletion, or by the worker's
-- retry), and by Reclaim with the rows of a deleted chat or application.
CREATE TABLE IF NOT EXISTS search_erasures (
	app_token   VARCHAR(32) NOT NULL,
	chat_number BIGINT      NOT NULL,
	number      BIGINT      NOT NULL,
	created_at  DATETIME(6) NOT NULL,
	deleted_at  DATETIME(6) NOT NULL,
	PRIMARY KEY (app_token, chat_number, number),
	KEY search_erasures_deleted_at (deleted_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
