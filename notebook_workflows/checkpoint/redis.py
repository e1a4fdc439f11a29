"""RedisStore: checkpoints on a Redis server, to share runs between kernels and machines.

Keys, under ``prefix`` (``nw`` by default)::

    {prefix}:runs               hash  run id -> the run's fixed fields (JSON)
    {prefix}:latest             hash  run id -> its latest record's header (JSON)
    {prefix}:run:{id}:head      hash  seq -> record header (kind, reason, step, status, ...)
    {prefix}:run:{id}:data      hash  seq -> the base or delta (JSON text)
    {prefix}:run:{id}:bases     sorted set of the seqs that are bases

Design decisions:

* A checkpoint is one Lua script (``EVALSHA``): one round trip, and atomic on the server, so
  it can refuse a seq that exists or a run that was deleted, and a reader never sees a record
  without its header or ``runs()`` a latest record that is not there.
* Durability is the server's: with ``appendonly yes`` and ``appendfsync everysec`` (or
  ``always``) a checkpoint survives a restart of Redis. Without persistence, runs live as long
  as the server does.
* redis-py is imported when the first ``RedisStore`` is made, not with the package. Connection
  errors are retried briefly (about a second in all) and then fail the run with a
  ``SnapshotError`` naming the server: a run should not hang on a server that is gone.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import SnapshotError
from .base import BaseStore, Record, RunExistsError, RunInfo, SeqTakenError

__all__ = ["RedisStore"]

# KEYS: runs, latest, head, data, bases.
# ARGV: run id, seq, header, data, is base ("1"/"0"), new run's fields or "", latest header.
_SAVE = """
if ARGV[6] ~= '' then
  if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return -1 end
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[6])
elseif redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  return -3
end
if redis.call('HEXISTS', KEYS[3], ARGV[2]) == 1 then return -2 end
redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
redis.call('HSET', KEYS[4], ARGV[2], ARGV[4])
if ARGV[5] == '1' then redis.call('ZADD', KEYS[5], ARGV[2], ARGV[2]) end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[7])
return 1
"""

_CHUNK = 1000  # seqs asked for per HMGET


class RedisStore(BaseStore):
    """A ``SnapshotStore`` on a Redis server (redis-py; ``pip install notebook-workflows[redis]``).

    ``url`` is a redis-py URL (``redis://[:password@]host:port/db``, ``rediss://`` for TLS);
    every key starts with ``prefix:``. Keyword arguments go to ``redis.Redis.from_url``; pass
    ``client=`` to use a client of your own instead.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        prefix: str = "nw",
        *,
        client: Any = None,
        **options: Any,
    ) -> None:
        try:
            import redis
            from redis.backoff import ExponentialBackoff
            from redis.retry import Retry
        except ImportError as exc:  # pragma: no cover - the redis extra is not installed
            raise ImportError(
                "RedisStore needs redis-py: pip install 'notebook-workflows[redis]'"
            ) from exc
        self.url = url
        self.prefix = prefix
        if client is None:
            options.setdefault("socket_timeout", 5.0)
            options.setdefault("socket_connect_timeout", 2.0)
            options.setdefault("retry", Retry(ExponentialBackoff(cap=0.5, base=0.05), 3))
            client = redis.Redis.from_url(url, **options)
        self._client = client
        self._save_script = client.register_script(_SAVE)
        self._runs_key = f"{prefix}:runs"
        self._latest_key = f"{prefix}:latest"

    def __repr__(self) -> str:
        return f"RedisStore({_without_password(self.url)!r}, prefix={self.prefix!r})"

    def _keys(self, run_id: str) -> tuple[str, str, str]:
        base = f"{self.prefix}:run:{run_id}"
        return f"{base}:head", f"{base}:data", f"{base}:bases"

    # -- the primitives -------------------------------------------------------------------------

    def _append(self, record: Record, new_run: RunInfo | None) -> None:
        head, data, bases = self._keys(record.run_id)
        parts = _header_parts(record)
        fields = ""
        if new_run is not None:
            fields = json.dumps(
                {
                    "workflow": new_run.workflow,
                    "parent": new_run.parent,
                    "parent_seq": new_run.parent_seq,
                    "created_at": new_run.created_at,
                }
            )
        answer = self._save_script(
            keys=[self._runs_key, self._latest_key, head, data, bases],
            args=[
                record.run_id,
                record.seq,
                json.dumps(parts),
                record.data,
                "1" if record.kind == "base" else "0",
                fields,
                json.dumps([record.seq, *parts]),
            ],
        )
        if answer == -1:
            raise RunExistsError(record.run_id)
        if answer == -2:
            raise SeqTakenError(record.seq)
        if answer == -3:
            raise SnapshotError(
                f"{self!r} no longer has run {record.run_id!r} (it was deleted while the run "
                f"went on); snapshot {record.seq} was not saved"
            )

    def _runs(self) -> list[RunInfo]:
        pipe = self._client.pipeline(transaction=True)
        pipe.hgetall(self._runs_key)
        pipe.hgetall(self._latest_key)
        fixed, latest = pipe.execute()
        infos = []
        for raw_id, raw in fixed.items():
            run_id = raw_id.decode()
            last = latest.get(raw_id)
            if last is not None:
                infos.append(_info(run_id, raw, last))
        return infos

    def _run(self, run_id: str) -> RunInfo | None:
        pipe = self._client.pipeline(transaction=True)
        pipe.hget(self._runs_key, run_id)
        pipe.hget(self._latest_key, run_id)
        fixed, last = pipe.execute()
        if fixed is None or last is None:
            return None
        return _info(run_id, fixed, last)

    def _records(self, run_id: str, first: int, last: int) -> list[Record]:
        head, data, _ = self._keys(run_id)
        records: list[Record] = []
        for start in range(max(first, 0), last + 1, _CHUNK):
            seqs = list(range(start, min(start + _CHUNK, last + 1)))
            pipe = self._client.pipeline(transaction=True)
            pipe.hmget(head, seqs)
            pipe.hmget(data, seqs)
            headers, bodies = pipe.execute()
            for seq, header, body in zip(seqs, headers, bodies, strict=True):
                if header is None or body is None:
                    continue  # pruned
                records.append(Record(run_id, seq, *json.loads(header), body.decode()))
        return records

    def _base_before(self, run_id: str, seq: int) -> int | None:
        found = self._client.zrevrangebyscore(self._keys(run_id)[2], seq, "-inf", start=0, num=1)
        return int(found[0]) if found else None

    def _delete(self, run_id: str) -> bool:
        pipe = self._client.pipeline(transaction=True)
        pipe.hdel(self._runs_key, run_id)
        pipe.hdel(self._latest_key, run_id)
        pipe.delete(*self._keys(run_id))
        found, *_ = pipe.execute()
        return bool(found)

    def _rebase(self, record: Record) -> int:
        head, data, bases = self._keys(record.run_id)
        older = [int(s) for s in self._client.hkeys(head) if int(s) < record.seq]
        pipe = self._client.pipeline(transaction=True)
        pipe.hset(head, str(record.seq), _header(record._replace(kind="base")))
        pipe.hset(data, str(record.seq), record.data)
        pipe.zadd(bases, {str(record.seq): record.seq})
        pipe.zremrangebyscore(bases, "-inf", record.seq - 1)
        if older:
            pipe.hdel(head, *older)
            pipe.hdel(data, *older)
        pipe.execute()
        return len(older)


def _header_parts(record: Record) -> list[Any]:
    return [record.kind, record.reason, record.step, record.status, record.steps, record.created_at]


def _header(record: Record) -> str:
    return json.dumps(_header_parts(record))


def _info(run_id: str, fixed: bytes, last: bytes) -> RunInfo:
    fields = json.loads(fixed)
    seq, _kind, _reason, _step, status, steps, updated_at = json.loads(last)
    return RunInfo(
        run_id=run_id,
        workflow=fields["workflow"],
        status=status,
        steps=steps,
        updated_at=updated_at,
        parent=fields.get("parent"),
        parent_seq=fields.get("parent_seq"),
        created_at=fields.get("created_at", 0.0),
        seq=seq,
    )


def _without_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest:
        creds, _, host = rest.rpartition("@")
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user + ':***' if user else ':***'}@{host}"
    return url
