-- With automerge at 16 (0002) and crisismerge at its default, also 16, a
-- level's incremental merge never got to run: the commit that put its 16th
-- segment on a level merged the whole level at once, inside the
-- transaction a client waits for. Under a steady 3k creates/s that was a
-- 3-6 s stall about every two minutes (a goroutine dump caught the worker
-- in fts5IndexCrisismerge). With crisismerge at 64, each commit does its
-- share of merging (automerge's incremental work, in proportion to what it
-- wrote) long before a level could reach the crisis.
INSERT INTO message_index (message_index, rank) VALUES ('crisismerge', 64);
