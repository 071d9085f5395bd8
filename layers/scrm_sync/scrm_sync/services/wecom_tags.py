"""Profile changes -> WeCom corp tags, for every member who follows the customer.

For one profile (the change feed names it; its messages arrive in order, one at a time per
profile), the use case reads the profile as it is now, works out the tags the rules want
(domain/wecom_tags.py), and for each (contact, following member) applies the difference from what
this system last wrote for that pair with one `mark_tag`. Reading the current profile instead of
replaying the change makes deliveries idempotent and order-free: a duplicate or stale message
finds nothing to do, and the last one always leaves the tags matching the last attributes.

A write is claimed before the call (the pair's state records the target as pending, conditional
on the version read) and confirmed after it, so two writers can never both diff against the same
state; a writer that died between call and confirmation leaves a pending target that the next
writer treats as possibly applied (after a lease).

Tag ids: the groups and tags the rules name are created once (`add_corp_tag`, one call per group,
under a lock) and their ids kept in the state store; a tag an admin deleted (errcode 40068) makes
the ids re-read and the write retried once. Every call takes a send from the corp's budget
(WeCom: 10,000 calls per API per corp a minute and 150,000 an hour, one window each); WeCom's own
frequency or concurrency refusal (45009 / 45033) marks the minute's window full, and the delivery
is retried later.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from ..domain.credentials import ChannelCredentials
from ..domain.followers import followers
from ..domain.profile import Profile
from ..domain.rules import Rules
from ..domain.wecom_tags import CorpTag, TagRules, tag_diff
from .ports import WeComRejected, WeComUnavailable
from .send_budget import BlockAllowance

PENDING_LEASE_SECONDS = 60.0  # a claimed write older than this is taken over (its writer died)
_BUSY_CODES = frozenset({45009, 45033})  # WeCom: frequency / concurrency limit reached
_TAG_UNKNOWN = 40068  # invalid tag id: an admin deleted it
_TAG_EXISTS = 40071  # the tag name exists in the group already
_NOT_FOLLOWING = frozenset({84061, 40096, 40003})  # not (or no longer) that member's customer


class TagApi(Protocol):
    def corp_tags(self, group_ids: Sequence[str] = ()) -> list[dict[str, Any]]: ...

    def add_corp_tag(
        self, group_name: str, tag_names: Sequence[str], group_id: str | None = None
    ) -> dict[str, Any]: ...

    def mark_tag(
        self, userid: str, external_userid: str, add: Sequence[str], remove: Sequence[str]
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class MemberTagState:
    written: frozenset[CorpTag] = frozenset()
    pending: frozenset[CorpTag] | None = None
    pending_at: float | None = None
    version: int = 0


class TagStateStore(Protocol):
    def states(self, keys: Sequence[str]) -> dict[str, MemberTagState]:
        """The state of each (contact, member) key that has one (strongly consistent)."""
        ...

    def claim(self, key: str, version: int, pending: frozenset[CorpTag], now: float) -> bool:
        """Record `pending` as the pair's in-flight target if its version is still `version`."""
        ...

    def confirm(self, key: str, version: int, written: frozenset[CorpTag]) -> bool:
        """Record `written` and clear the pending target if the version is still `version`."""
        ...

    def tag_ids(self, corp_id: str) -> dict[CorpTag, str]: ...

    def save_tag_ids(self, corp_id: str, ids: Mapping[CorpTag, str]) -> None: ...

    def lock(self, name: str, now: float, lease_seconds: float) -> bool: ...

    def unlock(self, name: str) -> None: ...


class TagsNotConfigured(RuntimeError):
    """Tag rules exist but the `wecom` channel entry lacks corp_id or secret (an operator's fix:
    the delivery waits on its queue)."""


class TagSyncBusy(RuntimeError):
    """Retry later: WeCom's limits, the corp's send budget, or another writer holds the pair."""


@dataclass(slots=True)
class TagSyncReport:
    profile_id: str
    calls: int = 0  # mark_tag calls made
    created_groups: int = 0
    unchanged: int = 0  # pairs already right
    not_following: int = 0  # WeCom says the member no longer has this contact
    skipped: str = ""  # why nothing was looked at (no rules, no contact, no follower)
    members: list[str] = field(default_factory=list)


def pair_key(corp_id: str, external_userid: str, userid: str) -> str:
    """State key of one (contact, member) pair: hashed, so contact ids stay out of the key."""
    digest = hashlib.sha256(f"{external_userid}|{userid}".encode()).hexdigest()[:32]
    return f"wecom-tags#{corp_id}#{digest}"


class WeComTagSync:
    def __init__(
        self,
        profiles: Callable[[str], Profile | None],
        rules: Callable[[], Rules],
        credentials: Callable[[], ChannelCredentials],
        api_for: Callable[[Mapping[str, Any]], TagApi],
        states: TagStateStore,
        allowances: Sequence[BlockAllowance],
        clock: Callable[[], datetime],
    ) -> None:
        self._profiles = profiles
        self._rules = rules
        self._credentials = credentials
        self._api_for = api_for
        self._states = states
        self._allowances = list(allowances)  # e.g. WeCom's per-minute and per-hour limits
        self._clock = clock
        self._ids: dict[str, dict[CorpTag, str]] = {}  # corp -> tag ids, this process's copy

    def sync(self, profile_id: str) -> TagSyncReport:
        report = TagSyncReport(profile_id)
        rules = self._rules().wecom_tags
        if not rules.rules:
            report.skipped = "no tag rules"
            return report
        entry = self._credentials().channel("wecom") or {}
        corp_id, secret = str(entry.get("corp_id") or ""), str(entry.get("secret") or "")
        if not corp_id or not secret:
            raise TagsNotConfigured("the wecom channel entry needs corp_id and secret to write tags")
        profile = self._profiles(profile_id)
        if profile is None:
            report.skipped = "no profile"
            return report
        contacts = sorted(
            i.value for i in profile.identifiers if i.type == "wecom_external_userid" and i.scope == corp_id
        )
        members = followers(profile.values)
        if not contacts or not members:
            report.skipped = "no WeCom contact" if not contacts else "no following member"
            return report
        report.members = members
        desired = rules.desired(profile.values)
        api = self._api_for(entry)
        pairs = [
            (contact, member, pair_key(corp_id, contact, member))
            for contact in contacts
            for member in members
        ]
        states = self._states.states([key for _, _, key in pairs])
        for contact, member, key in pairs:
            self._sync_pair(api, corp_id, rules, desired, contact, member, key, states.get(key), report)
        return report

    def _sync_pair(
        self,
        api: TagApi,
        corp_id: str,
        rules: TagRules,
        desired: frozenset[CorpTag],
        contact: str,
        member: str,
        key: str,
        state: MemberTagState | None,
        report: TagSyncReport,
    ) -> None:
        state = state or MemberTagState()
        now = self._clock().timestamp()
        pending = state.pending
        if (
            pending is not None
            and state.pending_at is not None
            and now - state.pending_at < PENDING_LEASE_SECONDS
        ):
            raise TagSyncBusy("another writer is updating this member's tags")
        diff = tag_diff(desired, state.written, pending)
        if not diff:
            report.unchanged += 1
            return
        ids = self._tag_ids(api, corp_id, rules, diff.add | diff.remove, report)
        self._take_send(corp_id, "mark_tag")  # before the claim: no budget, no pending write
        if not self._states.claim(key, state.version, desired, now):
            raise TagSyncBusy("the member's tag state changed while this write was prepared")
        claimed = state.version + 1
        for attempt in range(2):
            if attempt:
                self._take_send(corp_id, "mark_tag")
            try:
                api.mark_tag(
                    member,
                    contact,
                    sorted(ids[t] for t in diff.add if t in ids),
                    sorted(ids[t] for t in diff.remove if t in ids),
                )
            except WeComRejected as exc:
                if exc.errcode == _TAG_UNKNOWN and attempt == 0:
                    self._forget_ids(corp_id)
                    ids = self._tag_ids(api, corp_id, rules, diff.add | diff.remove, report)
                    continue
                if exc.errcode in _NOT_FOLLOWING:
                    self._states.confirm(key, claimed, state.written)  # nothing was written
                    report.not_following += 1
                    return
                raise
            except WeComUnavailable as exc:
                self._back_off(corp_id, "mark_tag", exc)
                raise
            break
        report.calls += 1
        self._states.confirm(key, claimed, desired)

    # --- tag ids ----------------------------------------------------------------------------------
    def _tag_ids(
        self, api: TagApi, corp_id: str, rules: TagRules, tags: frozenset[CorpTag], report: TagSyncReport
    ) -> dict[CorpTag, str]:
        known = self._ids.get(corp_id) or {}
        if tags <= known.keys():
            return known
        known = self._states.tag_ids(corp_id)
        self._ids[corp_id] = known
        if tags <= known.keys():
            return known
        lock = f"wecom-tag-ids-lock#{corp_id}"
        if not self._states.lock(lock, self._clock().timestamp(), PENDING_LEASE_SECONDS):
            raise TagSyncBusy("another writer is creating the corp's tags")
        try:
            known = self._create_missing(api, corp_id, rules, tags, report)
        finally:
            self._states.unlock(lock)
        self._ids[corp_id] = known
        missing = tags - known.keys()
        if missing:
            raise WeComUnavailable(f"WeCom did not return ids for {len(missing)} tags")
        return known

    def _create_missing(
        self, api: TagApi, corp_id: str, rules: TagRules, tags: frozenset[CorpTag], report: TagSyncReport
    ) -> dict[CorpTag, str]:
        """Read the corp's tags (someone may have created ours meanwhile), then create each group
        the wanted tags fall in, with every tag the rules name in it, in one call per group."""
        self._take_send(corp_id, "get_corp_tag_list")
        try:
            listed = api.corp_tags()
        except WeComUnavailable as exc:
            self._back_off(corp_id, "get_corp_tag_list", exc)
            raise
        known, group_ids = _ids_from_groups(listed)
        groups = rules.groups()
        for group in sorted({t.group for t in tags}):
            missing = sorted(
                name for name in groups.get(group, frozenset()) if CorpTag(group, name) not in known
            )
            if not missing:
                continue
            self._take_send(corp_id, "add_corp_tag")
            try:
                created = api.add_corp_tag(group, missing, group_ids.get(group))
            except WeComUnavailable as exc:
                self._back_off(corp_id, "add_corp_tag", exc)
                raise
            except WeComRejected as exc:
                if exc.errcode != _TAG_EXISTS:
                    raise
                # somebody (an admin) created one of them since the list: use what is there now
                self._take_send(corp_id, "get_corp_tag_list")
                known.update(_ids_from_groups(api.corp_tags())[0])
                continue
            report.created_groups += 1
            found, _ = _ids_from_groups([created])
            known.update(found)
        self._states.save_tag_ids(corp_id, known)
        return known

    def _forget_ids(self, corp_id: str) -> None:
        self._ids.pop(corp_id, None)
        self._states.save_tag_ids(corp_id, {})

    # --- the corp's budget --------------------------------------------------------------------------
    def _take_send(self, corp_id: str, api_name: str) -> None:
        now = self._clock()
        for allowance in self._allowances:
            if not allowance.take(_budget_scope(corp_id, api_name, allowance), now):
                raise TagSyncBusy(f"the corp's {api_name} budget is spent for now")

    def _back_off(self, corp_id: str, api_name: str, exc: WeComUnavailable) -> None:
        """WeCom's 45009/45033 block the corp for a minute: close the shortest window."""
        if exc.errcode in _BUSY_CODES and self._allowances:
            shortest = min(self._allowances, key=lambda a: a.window.seconds)
            shortest.exhaust(_budget_scope(corp_id, api_name, shortest), self._clock())


def _budget_scope(corp_id: str, api_name: str, allowance: BlockAllowance) -> str:
    """The counters of one API of one corp in one window (windows must not share counters)."""
    return f"wecom-api#{corp_id}#{api_name}#{allowance.window.seconds}s"


def _ids_from_groups(groups: Sequence[Mapping[str, Any]]) -> tuple[dict[CorpTag, str], dict[str, str]]:
    """Tag ids and group ids by name from WeCom's `tag_group` answers (deleted ones left out)."""
    ids: dict[CorpTag, str] = {}
    group_ids: dict[str, str] = {}
    for group in groups:
        if not isinstance(group, Mapping) or group.get("deleted"):
            continue
        name = str(group.get("group_name") or "")
        if group.get("group_id"):
            group_ids[name] = str(group["group_id"])
        for tag in group.get("tag") or []:
            if isinstance(tag, Mapping) and tag.get("id") and tag.get("name") and not tag.get("deleted"):
                ids[CorpTag(name, str(tag["name"]))] = str(tag["id"])
    return ids, group_ids
