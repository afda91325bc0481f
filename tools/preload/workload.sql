-- workload.sql: sqlite3 builds, indexes and queries a table for
-- preload-test.sh (the database lives in memory; output is deterministic).
CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER, name TEXT, payload TEXT);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 150000)
INSERT INTO t SELECT i, (i * 7919) % 1000, 'name' || (i * 31 % 9973), printf('%.*c', i % 200, 'x') FROM n;
CREATE INDEX t_k ON t(k);
CREATE INDEX t_name ON t(name);
SELECT count(*), sum(k), sum(length(payload)) FROM t;
SELECT k, count(*), max(length(payload)) FROM t WHERE k BETWEEN 10 AND 14 GROUP BY k ORDER BY k;
SELECT name, count(*) AS c FROM t GROUP BY name ORDER BY c DESC, name LIMIT 5;
UPDATE t SET payload = upper(payload) || name WHERE k % 3 = 0;
DELETE FROM t WHERE k % 5 = 0;
SELECT count(*), sum(length(payload)), group_concat(DISTINCT substr(name, 1, 5)) FROM t WHERE k < 3;
SELECT a.k, count(*) FROM t a JOIN t b ON a.id = b.id + 1 WHERE a.k = (b.k + 919) % 1000 AND a.k < 50 GROUP BY a.k ORDER BY 2 DESC, 1 LIMIT 3;
