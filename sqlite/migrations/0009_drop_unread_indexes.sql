-- No query reads messages or chats in created_at order: lists go by
-- number, feeds by revision (0006). Every insert still paid for these two
-- indexes, and every commit wrote a leaf page of each per chat it touched
-- (a batch of creates over 16 chats: 16 more pages to write).
DROP INDEX messages_app_token_chat_number_created_at;
DROP INDEX chats_app_token_created_at;
