-- Every table is clustered on an auto-increment id, so inserts append to the
-- primary index instead of splitting its pages, and secondary indices, which
-- carry the primary key in each entry, stay narrow. Clients address rows by
-- token and numbers, which the unique indices serve; rows refer to each other
-- by those denormalized keys rather than by id, so no read needs a join.
-- There are no foreign keys: a message may be stored before its chat (see
-- instachat.Store.ApplyCreates).
--
-- Text is utf8mb4_bin. Tokens are case-sensitive, so under a case-insensitive
-- collation two applications could share one; search applies a
-- case-insensitive collation in its query, where it needs one.
--
-- MySQL commits DDL as it goes, so a migration cut short is run again from
-- its first statement: each statement must be harmless to repeat.

CREATE TABLE IF NOT EXISTS applications (
	id          BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
	token       VARCHAR(32)  NOT NULL,
	name        VARCHAR(255) NOT NULL,
	chats_count BIGINT       NOT NULL DEFAULT 0,
	created_at  DATETIME(6)  NOT NULL,
	updated_at  DATETIME(6)  NOT NULL,
	UNIQUE KEY token (token)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- (app_token, created_at) serves counting an application's chats over time.
CREATE TABLE IF NOT EXISTS chats (
	id             BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
	app_token      VARCHAR(32)  NOT NULL,
	number         BIGINT       NOT NULL,
	name           VARCHAR(255) NOT NULL,
	messages_count BIGINT       NOT NULL DEFAULT 0,
	created_at     DATETIME(6)  NOT NULL,
	updated_at     DATETIME(6)  NOT NULL,
	UNIQUE KEY app_token_number (app_token, number),
	KEY app_token_created_at (app_token, created_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- MEDIUMTEXT: TEXT stops one byte short of the default 64 KiB body limit;
-- MEDIUMTEXT holds up to 16 MiB, room for a raised limit.
CREATE TABLE IF NOT EXISTS messages (
	id          BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY,
	app_token   VARCHAR(32) NOT NULL,
	chat_number BIGINT      NOT NULL,
	number      BIGINT      NOT NULL,
	body        MEDIUMTEXT  NOT NULL,
	created_at  DATETIME(6) NOT NULL,
	updated_at  DATETIME(6) NOT NULL,
	UNIQUE KEY app_token_chat_number_number (app_token, chat_number, number),
	KEY app_token_chat_number_created_at (app_token, chat_number, created_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
