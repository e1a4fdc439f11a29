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
* redis-py is imported when the first ``RedisStore`` is made, not with the package.
* Every call is bounded: ``timeout`` (2 s by default) is both the connect and the socket
  timeout, and a call that times out or loses its connection is retried once, so a server that
  is stopped (``SIGSTOP``), overloaded or gone holds a checkpoint (which the recorder writes on
  the event loop) for about twice ``timeout`` at most, then fails the run with a
  ``SnapshotError`` saying the server did not answer (its address and the timeout); the run's
  error says that ``workflow.resume(run_id)`` continues once it answers.
* A server that answers but refuses (a wrong password or user, a database number it does
  not have, an ACL that forbids a command) is named with its own words and the part of the
  URL to check, never as a server that did not answer.
* A batch of records (``save_many``, what ``durability="async"`` writes) is one script too:
  all of the batch or none of it, in one round trip.
* A retried checkpoint can find its own first attempt already applied (the server was slow,
  not gone: the first request sat in its socket buffer and ran later). The save script
  therefore accepts a record that is already there *byte for byte* (header, data and, for a new
  run, the run's fields, all of which carry the record's creation time) as done, and refuses
  only a different one: a retry never fails with "already has snapshot N" about its own write.
  A batch is accepted again the same way when every record of it is there byte for byte.
* Leases are keys ``{prefix}:lease:{id}`` holding the lease as JSON with a Redis expiry
  (``PX``): a lease nobody renews disappears by itself. A change is a compare-and-set script
  (write only if the key still holds what was read), retried when another process won.
* ``close()`` closes the connections of the client the store made (not a ``client=`` of yours).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import SnapshotError
from .base import BaseStore, Record, RunExistsError, RunInfo, SeqTakenError
from .lease import KEEP, Lease

__all__ = ["RedisStore"]

# KEYS: runs, latest, head, data, bases.
# ARGV: run id, seq, header, data, is base ("1"/"0"), new run's fields or "", latest header.
# Returns 1 (written), 0 (this very record was there already: a retry of a write that was
# applied), -1 (the run exists), -2 (another record has this seq), -3 (the run was deleted).
_SAVE = """
if ARGV[6] ~= '' then
  local known = redis.call('HGET', KEYS[1], ARGV[1])
  if known then
    if known == ARGV[6] and redis.call('HGET', KEYS[3], ARGV[2]) == ARGV[3]
        and redis.call('HGET', KEYS[4], ARGV[2]) == ARGV[4] then return 0 end
    return -1
  end
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[6])
elseif redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  return -3
end
local head = redis.call('HGET', KEYS[3], ARGV[2])
if head then
  if head == ARGV[3] and redis.call('HGET', KEYS[4], ARGV[2]) == ARGV[4] then return 0 end
  return -2
end
redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
redis.call('HSET', KEYS[4], ARGV[2], ARGV[4])
if ARGV[5] == '1' then redis.call('ZADD', KEYS[5], ARGV[2], ARGV[2]) end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[7])
return 1
"""

# A batch (save_many) of consecutive records of one run, all or none. KEYS: as _SAVE.
# ARGV: run id, latest header, then per record: seq, header, data, is base ("1"/"0").
# Returns {1} (written), {0} (every one of them was there already, byte for byte: a retry of a
# batch that was applied), {-2, seq} (another record has that seq), {-3} (no such run).
_SAVE_MANY = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return {-3} end
local same = 0
for i = 3, #ARGV, 4 do
  local head = redis.call('HGET', KEYS[3], ARGV[i])
  if head then
    if head ~= ARGV[i + 1] or redis.call('HGET', KEYS[4], ARGV[i]) ~= ARGV[i + 2] then
      return {-2, tonumber(ARGV[i])}
    end
    same = same + 1
  end
end
if same * 4 == #ARGV - 2 then return {0} end
if same > 0 then return {-2, -1} end
for i = 3, #ARGV, 4 do
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
  redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 2])
  if ARGV[i + 3] == '1' then redis.call('ZADD', KEYS[5], ARGV[i], ARGV[i]) end
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return {1}
"""

# KEYS: the lease. ARGV: what it must hold now ("" for nothing), the new value ("": delete),
# its time to live in ms. Returns 1 when it changed, 0 when someone changed it first.
_SWAP_LEASE = """
local now = redis.call('GET', KEYS[1]) or ''
if now ~= ARGV[1] then return 0 end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return 1
"""

DEFAULT_TIMEOUT = 2.0  # seconds: connect and socket timeout of every call

_CHUNK = 1000  # seqs asked for per HMGET


class RedisStore(BaseStore):
    """A ``SnapshotStore`` on a Redis server (redis-py; ``pip install notebook-workflows[redis]``).

    ``url`` is a redis-py URL (``redis://[:password@]host:port/db``, ``rediss://`` for TLS);
    every key starts with ``prefix:``. ``timeout`` (seconds, 2 by default) bounds every call
    (connect and socket timeout; one retry). Keyword arguments go to
    ``redis.Redis.from_url``; pass ``client=`` to use a client of your own instead.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        prefix: str = "nw",
        *,
        timeout: float = DEFAULT_TIMEOUT,
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
        self._own_client = client is None
        if client is None:
            options.setdefault("socket_timeout", timeout)
            options.setdefault("socket_connect_timeout", timeout)
            options.setdefault("retry", Retry(ExponentialBackoff(cap=0.2, base=0.05), 1))
            client = redis.Redis.from_url(url, **options)
        pool = getattr(client, "connection_pool", None)
        kwargs: dict[str, Any] = getattr(pool, "connection_kwargs", {})
        self.timeout: float | None = kwargs.get("socket_timeout", timeout)
        self.address = (
            kwargs["path"] if "path" in kwargs else f"{kwargs.get('host')}:{kwargs.get('port')}"
        )
        self.database = kwargs.get("db", 0)
        self._errors = (redis.exceptions.TimeoutError, redis.exceptions.ConnectionError)
        self._client = client
        self._save_script = client.register_script(_SAVE)
        self._save_many_script = client.register_script(_SAVE_MANY)
        self._swap_script = client.register_script(_SWAP_LEASE)
        self._runs_key = f"{prefix}:runs"
        self._latest_key = f"{prefix}:latest"

    def __repr__(self) -> str:
        return f"RedisStore({_without_password(self.url)!r}, prefix={self.prefix!r})"

    def _explain(self, exc: BaseException) -> str | None:
        import redis

        at = f"the Redis server at {self.address}"
        if isinstance(exc, redis.exceptions.AuthenticationError):
            return (
                f"{at} refused the connection: {str(exc).rstrip('.')} (the server's words). "
                f"Check the user name and password in the URL; nothing was saved"
            )
        if isinstance(exc, redis.exceptions.ResponseError):
            words = str(exc)
            if "DB index" in words:
                return (
                    f"{at} has no database {self.database}: {words} (the server's words). "
                    f"Check the database number at the end of the URL; nothing was saved"
                )
            if words.startswith("NOPERM"):
                return (
                    f"{at} refused a command to the URL's user: {words} (the server's words). "
                    f"The store's user needs its keys ({self.prefix}:*) and scripts (EVALSHA)"
                )
            return None
        if not isinstance(exc, self._errors):
            return None
        if isinstance(exc, redis.exceptions.TimeoutError):
            what = (
                f"did not answer within {self.timeout:g} s (the store's timeout)"
                if self.timeout
                else "did not answer"
            )
        else:
            what = f"could not be reached ({exc})"
        return f"{at} {what}, nor when asked again. Is it running, and not stopped or overloaded?"

    def _close(self) -> None:
        if self._own_client:
            self._client.close()

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

    def _append_many(self, records: Sequence[Record]) -> None:
        head, data, bases = self._keys(records[0].run_id)
        last = records[-1]
        args: list[Any] = [last.run_id, json.dumps([last.seq, *_header_parts(last)])]
        for record in records:
            is_base = "1" if record.kind == "base" else "0"
            args += [record.seq, _header(record), record.data, is_base]
        answer = self._save_many_script(
            keys=[self._runs_key, self._latest_key, head, data, bases], args=args
        )
        if answer[0] == -2:
            raise SeqTakenError(answer[1] if answer[1] >= 0 else None)
        if answer[0] == -3:
            raise self._gone(records)

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
                records.append(Record._make((run_id, seq, *json.loads(header), body.decode())))
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

    def _lease_key(self, run_id: str) -> str:
        return f"{self.prefix}:lease:{run_id}"

    def _lease(self, run_id: str) -> Lease | None:
        raw = self._client.get(self._lease_key(run_id))
        return Lease.from_json(json.loads(raw)) if raw else None

    def _swap_lease(
        self, run_id: str, change: Callable[[Lease | None], Lease | object | None]
    ) -> Lease | None:
        key = self._lease_key(run_id)
        for _ in range(100):
            raw = self._client.get(key) or b""
            current = Lease.from_json(json.loads(raw)) if raw else None
            new = change(current)
            if new is KEEP:
                return current
            value, ttl_ms = "", 0
            if new is not None:
                assert isinstance(new, Lease)
                value = json.dumps(new.to_json())
                ttl_ms = max(1, math.ceil((new.expires_at - time.time()) * 1000))
            if self._swap_script(keys=[key], args=[raw, value, ttl_ms]) == 1:
                return new
        raise SnapshotError(f"{self!r}: the lease of run {run_id!r} kept changing; try again")


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
