"""Generated sync scenarios and an independent reference model of the synchronisation contract.

A scenario is a seeded profile (direction, modified-on forms, matching, policies) and a list
of small steps (the dataclasses below): writes to the ERP customer table, the CRM account
table and, in some scenarios, contacts that look their customer up, and syncs. The model keeps
its own copy of what the test wrote, in plain dicts, and decides from the contract alone what
the databases and the store must hold after each completed sync: it never calls the engine.
The harness (tests/unit/scenarios/test_generated_syncs.py) writes the steps to real SQLite
files, runs the engine, and hands the model snapshots of both databases and the store to judge.

Contract points the model checks (see /SPEC.md section 4 and the README):
- no record lost: every live source record the contract says is synchronised has a coupled,
  live partner with equal mapped values (full sync: every coupled and creatable record, drift
  repaired; modified sync: every record changed or failed since the last completed sync);
- none duplicated: couplings unique, and every record the engine created is coupled;
- records re-read and unchanged are not rewritten;
- matching (match_on) couples a unique uncoupled candidate, fails ambiguous records, never
  creates them;
- bidirectional: only both sides changing a bidirectional field is a conflict; one-way
  fields flow their own way.
"""

from __future__ import annotations

import dataclasses
import datetime
import random
import time
from dataclasses import dataclass, field
from typing import Any

EPOCH = datetime.datetime(1970, 1, 1)
SENTINEL = datetime.datetime(9999, 12, 31)  # the far-future stamp some systems use for "never expires"
SECOND = 1_000_000  # the model's clock counts microseconds since 1970 (UTC)


def to_us(moment: datetime.datetime) -> int:
    delta = moment - EPOCH
    return (delta.days * 86400 + delta.seconds) * SECOND + delta.microseconds


def from_us(us: int) -> datetime.datetime:
    return EPOCH + datetime.timedelta(microseconds=us)


SENTINEL_US = to_us(SENTINEL)


# -- modified-on forms -------------------------------------------------------------------------------
@dataclass(frozen=True)
class StampForm:
    """How one table's modified-on column holds an instant (one form per column)."""

    kind: str  # native | iso | epoch_seconds | epoch_milliseconds
    column_type: str  # DATETIME | TEXT | INTEGER
    sep: str = " "
    digits: int = 6
    zone: str = ""  # "" (naive UTC), "Z", or a fixed offset such as "+02:00"

    def offset(self) -> datetime.timedelta:
        if self.zone in ("", "Z"):
            return datetime.timedelta(0)
        sign = -1 if self.zone[0] == "-" else 1
        hours, minutes = self.zone[1:].split(":")
        return sign * datetime.timedelta(hours=int(hours), minutes=int(minutes))

    def stored(self, us: int) -> int:
        """The instant the stored value stands for (the column's precision cuts the rest)."""
        if self.kind == "epoch_seconds":
            return us - us % SECOND
        if self.kind == "epoch_milliseconds":
            return us - us % 1000
        if self.kind == "iso" and self.digits < 6:
            unit = 10 ** (6 - self.digits)
            return us - us % unit
        return us

    def render(self, us: int) -> Any:
        if self.kind == "epoch_seconds":
            return us // SECOND
        if self.kind == "epoch_milliseconds":
            return us // 1000
        moment = from_us(us)
        if self.kind == "native":
            return moment.strftime("%Y-%m-%d %H:%M:%S.%f")
        local = moment + self.offset()
        text = local.strftime("%Y-%m-%d") + self.sep + local.strftime("%H:%M:%S")
        if self.digits:
            fraction = "%06d" % local.microsecond + "000"  # nanoseconds: 7 to 9 digits end in zeros
            text += "." + fraction[: self.digits]
        return text + self.zone

    def describe(self) -> str:
        if self.kind != "iso":
            return "%s in %s" % (self.kind, self.column_type)
        return "iso %r digits=%d zone=%r in %s" % (self.sep, self.digits, self.zone, self.column_type)


def draw_form(rng: random.Random) -> StampForm:
    roll = rng.random()
    if roll < 0.45:
        return StampForm("native", "DATETIME")
    if roll < 0.8:
        zone = rng.choice(["", "Z", "Z", "+02:00", "-05:00", "+00:00"])
        return StampForm("iso", rng.choice(["TEXT", "TEXT", "DATETIME"]), sep=rng.choice(["T", " "]), digits=rng.choice([0, 3, 6, 7, 9, 1]),
                         zone=zone)
    if roll < 0.9:
        return StampForm("epoch_seconds", "INTEGER")
    return StampForm("epoch_milliseconds", "INTEGER")


# -- the profile of a scenario -------------------------------------------------------------------------
@dataclass
class Profile:
    direction: str  # to_integration | bidirectional
    local_form: StampForm
    crm_form: StampForm
    overlap: int  # watermark_overlap, seconds
    synch_only: bool
    match_on: str | None  # None | number | number_ignore_case | name
    propagate: bool
    deletion_policy: str  # none | remove_coupling
    conflict: str  # none | local_wins | integration_wins | merge
    merge_fallback: str
    contacts: bool
    contacts_synch_only: bool
    no_primary_key: bool
    read_ahead: bool

    @property
    def bidirectional(self) -> bool:
        return self.direction == "bidirectional"

    def mappings(self) -> list[dict[str, Any]]:
        """The mapping declarations of the scenario, as table_mapping receives them."""
        customer: dict[str, Any] = {
            "name": "CUSTOMER", "local_table": "customer", "local_key": "no", "local_modified_field": "modified_on",
            "integration_table": "account", "integration_key": "accountid", "integration_modified_field": "modifiedon",
            "direction": self.direction, "synch_only_coupled_records": self.synch_only,
            "propagate_deletions": self.propagate, "deletion_conflict_resolution": self.deletion_policy,
        }
        if self.bidirectional:
            customer["fields"] = [
                {"field": "name", "integration_field": "name"},
                {"field": "city", "integration_field": "address1_city"},
                {"field": "notes", "integration_field": "description", "direction": "to_integration"},
                {"field": "email", "integration_field": "emailaddress1", "direction": "from_integration"},
            ]
            customer["update_conflict_resolution"] = self.conflict
            if self.conflict == "merge":
                customer["merge_fallback"] = self.merge_fallback
        else:
            customer["fields"] = [
                {"field": "no", "integration_field": "accountnumber"},
                {"field": "name", "integration_field": "name"},
                {"field": "city", "integration_field": "address1_city"},
            ]
            match = {
                None: None,
                "number": [{"field": "no", "integration_field": "accountnumber", "ignore_case": False, "trim": False}],
                "number_ignore_case": [{"field": "no", "integration_field": "accountnumber", "ignore_case": True, "trim": True}],
                "name": ["name"],
            }[self.match_on]
            if match is not None:
                customer["match_on"] = match
        out = [customer]
        if self.contacts:
            out.append({
                "name": "CONTACT", "local_table": "contact", "local_key": "no", "local_modified_field": "modified_on",
                "integration_table": "contact", "integration_key": "contactid", "integration_modified_field": "modifiedon",
                "direction": "to_integration", "synch_only_coupled_records": self.contacts_synch_only,
                "fields": [
                    {"field": "no", "integration_field": "contactnumber"},
                    {"field": "name", "integration_field": "fullname"},
                    {"field": "company_no", "integration_field": "parentcustomerid", "lookup": "CUSTOMER"},
                ],
            })
        return out

    def describe(self) -> str:
        parts = ["direction=%s" % self.direction, "local modified-on: %s" % self.local_form.describe(),
                 "crm modified-on: %s" % self.crm_form.describe(), "overlap=%ss" % self.overlap, "synch_only=%s" % self.synch_only,
                 "deletions=%s%s" % (self.deletion_policy, "+propagate" if self.propagate else "")]
        if self.match_on:
            parts.append("match_on=%s" % self.match_on)
        if self.bidirectional:
            parts.append("conflict=%s%s" % (self.conflict, "/" + self.merge_fallback if self.conflict == "merge" else ""))
        if self.contacts:
            parts.append("contacts(synch_only=%s)" % self.contacts_synch_only)
        if self.no_primary_key:
            parts.append("customer table without primary key")
        if self.read_ahead:
            parts.append("read_ahead")
        return ", ".join(parts)


# -- steps -----------------------------------------------------------------------------------------------
# Every step advances the test clock by ``dt`` microseconds first (0: the same stamp as the step before).
@dataclass
class Insert:
    """A new ERP customer."""
    dt: int
    key: str
    name: str
    city: str
    notes: str | None = None
    email: str | None = None


@dataclass
class Update:
    """A mapped field of an ERP customer changes (its stamp moves)."""
    dt: int
    key: str
    field: str
    value: str


@dataclass
class Touch:
    """Only the stamp of an ERP customer moves."""
    dt: int
    key: str


@dataclass
class UpdateUnmapped:
    """A column no field mapping reads changes (the stamp moves)."""
    dt: int
    key: str
    value: str


@dataclass
class Delete:
    dt: int
    key: str


@dataclass
class BulkUpdate:
    """Many customers change in one transaction: one shared stamp (ties across pages)."""
    dt: int
    keys: list[str]
    field: str
    value: str


@dataclass
class LateCommit:
    """A customer written by a transaction that took its stamp before the last sync read and committed after it.

    The stamp is ``back`` (0..1) of the overlap behind the newest modified-on the last sync of CUSTOMER read.
    An unknown key is inserted.
    """
    dt: int
    key: str
    field: str
    value: str
    back: float


@dataclass
class Sentinel:
    """A customer changes and gets the far-future stamp 9999-12-31."""
    dt: int
    key: str
    field: str
    value: str


@dataclass
class BadText:
    """A customer's name becomes bytes that are not UTF-8."""
    dt: int
    key: str


@dataclass
class DuplicateKey:
    """A second ERP row with an existing customer number (tables without a primary key only)."""
    dt: int
    key: str
    name: str
    city: str


@dataclass
class CrmInsert:
    """Someone creates a CRM account (an existing record to match, or a new one of a bidirectional mapping)."""
    dt: int
    accountid: str
    number: str | None
    name: str
    city: str
    email: str | None = None


@dataclass
class CrmEdit:
    """Someone edits the CRM account coupled to customer ``key`` (drift in one-way mappings)."""
    dt: int
    key: str
    field: str
    value: str


@dataclass
class CrmDelete:
    """Someone deletes the CRM account coupled to customer ``key``."""
    dt: int
    key: str


@dataclass
class ContactInsert:
    dt: int
    key: str
    name: str
    company: str | None


@dataclass
class ContactUpdate:
    dt: int
    key: str
    field: str  # name | company_no
    value: str | None


@dataclass
class Sync:
    """One run: mode, mappings (None: all), page size; ``kill``: SIGKILL the run at the kill-th store batch commit
    (``before`` it or right after it); the run then did not complete and nothing is checked until the next one."""
    dt: int
    mode: str
    names: list[str] | None
    batch_size: int
    kill: int | None = None
    before: bool = False


STEP_TYPES = (Insert, Update, Touch, UpdateUnmapped, Delete, BulkUpdate, LateCommit, Sentinel, BadText, DuplicateKey, CrmInsert,
              CrmEdit, CrmDelete, ContactInsert, ContactUpdate, Sync)


def describe_step(step: Any) -> str:
    values = ", ".join("%s=%r" % (f.name, getattr(step, f.name)) for f in dataclasses.fields(step))
    return "%s(%s)" % (type(step).__name__, values)


@dataclass
class Scenario:
    seed: int
    profile: Profile
    steps: list[Any]
    start_us: int  # the test clock at the first step: real time, less the time the steps can advance it

    def with_steps(self, steps: list[Any]) -> Scenario:
        return dataclasses.replace(self, steps=list(steps))


# -- the generator ---------------------------------------------------------------------------------------
NAME_POOL = ["Adatum", "Contoso", "Fabrikam", "Litware", "Northwind", "Tailspin", "Wingtip", "Proseware"]
CITIES = ["Oslo", "Lima", "Pune", "Graz", "Cork", "Kobe", "Nice", "Bonn"]


class _Keys:
    """The generator's view of which records exist (it never looks at the engine)."""

    def __init__(self, rng: random.Random, profile: Profile):
        self.rng = rng
        self.profile = profile
        self.customers: list[str] = []
        self.deleted: list[str] = []
        self.contacts: list[str] = []
        self.counter = 0

    def new_key(self) -> str:
        self.counter += 1
        return "C%03d" % self.counter

    def live(self) -> str | None:
        return self.rng.choice(self.customers) if self.customers else None

    def name(self) -> str:
        if self.profile.match_on == "name":
            return self.rng.choice(NAME_POOL[:5])
        self.counter += 1
        return "%s %d" % (self.rng.choice(NAME_POOL), self.counter)


def _dt(rng: random.Random) -> int:
    if rng.random() < 0.25:
        return 0  # the same stamp as the step before: a tie
    return rng.randint(1, 20) * SECOND + rng.randint(0, SECOND - 1)


def generate(seed: int) -> Scenario:
    """A scenario from its seed alone: the same seed gives the same steps."""
    rng = random.Random(seed)
    bidirectional = rng.random() < 0.3
    local_form = draw_form(rng)
    crm_form = local_form if rng.random() < 0.5 else draw_form(rng)
    deletions = rng.choice([(False, "none"), (False, "remove_coupling"), (True, "remove_coupling")])
    if bidirectional:
        deletions = (rng.random() < 0.5, "remove_coupling")
    profile = Profile(
        direction="bidirectional" if bidirectional else "to_integration",
        local_form=local_form,
        crm_form=crm_form,
        overlap=rng.choice([5, 30, 60, 120]),
        synch_only=rng.random() < 0.5,
        match_on=None if bidirectional else rng.choice([None, None, "number", "number_ignore_case", "name"]),
        propagate=deletions[0],
        deletion_policy=deletions[1],
        conflict=rng.choice(["none", "local_wins", "integration_wins", "merge"]),
        merge_fallback=rng.choice(["none", "local_wins", "integration_wins"]),
        contacts=not bidirectional and rng.random() < 0.35,
        contacts_synch_only=rng.random() < 0.5,
        no_primary_key=not bidirectional and rng.random() < 0.08,
        read_ahead=rng.random() < 0.3,
    )
    keys = _Keys(rng, profile)
    steps: list[Any] = []
    for _index in range(rng.randint(2, 9)):
        key = keys.new_key()
        keys.customers.append(key)
        steps.append(Insert(_dt(rng), key, keys.name(), rng.choice(CITIES), notes=rng.choice([None, "n0"])))
    steps.extend(_existing_crm_records(rng, keys))
    if profile.contacts:
        for index in range(rng.randint(1, 4)):
            contact = "P%03d" % (index + 1)
            keys.contacts.append(contact)
            steps.append(ContactInsert(_dt(rng), contact, "Person %d" % index, rng.choice(keys.customers + [None])))
    steps.append(_sync(rng, profile, first=True))
    for _round in range(rng.choice([1, 1, 2])):
        for _step in range(rng.randint(1, 6)):
            step = _random_step(rng, keys)
            if step is not None:
                steps.append(step)
        steps.append(_sync(rng, profile))
        if steps[-1].kill is not None:
            steps.append(_sync(rng, profile))  # the run after a kill must repair everything
    # why: most scenarios run hours after their changes; some end just before the sync, within the overlap of the clock
    span = sum(step.dt for step in steps)
    back = 3 * 3600 * SECOND - rng.randint(0, 600) * SECOND if rng.random() < 0.7 else span + rng.randint(1, 5) * SECOND
    return Scenario(seed, profile, steps, int(time.time() * SECOND) - back)


def _existing_crm_records(rng: random.Random, keys: _Keys) -> list[Any]:
    """CRM accounts that exist before the first sync: partners to match, near-misses, duplicates."""
    profile = keys.profile
    out: list[Any] = []
    count = rng.randint(0, 4) if (profile.match_on or profile.bidirectional) else rng.choice([0, 0, 1])
    for index in range(count):
        target = rng.choice(keys.customers)
        number = rng.choice([target, target.lower(), target + " ", "X%03d" % index, None])
        name = keys.name()
        out.append(CrmInsert(_dt(rng), "a-%d-%d" % (rng.randint(0, 10**9), index), number, name, rng.choice(CITIES),
                             email=rng.choice([None, "x%d@example.com" % index])))
    return out


def _sync(rng: random.Random, profile: Profile, first: bool = False) -> Sync:
    roll = rng.random()
    mode = "full" if (first and roll < 0.75) or (not first and roll < 0.3) else "modified"
    names = None
    if not first and profile.contacts and rng.random() < 0.2:
        names = [rng.choice(["CUSTOMER", "CONTACT"])]
    elif not first and rng.random() < 0.1:
        names = ["CUSTOMER"]
    batch = rng.choice([1, 2, 3, 3, 4, 5, 7, 10, 50]) if rng.random() < 0.9 else rng.randint(1, 50)
    kill = rng.randint(1, 6) if not first and rng.random() < 0.15 else None
    return Sync(_dt(rng), mode, names, batch, kill, before=rng.random() < 0.5)


def _random_step(rng: random.Random, keys: _Keys) -> Any:
    """One step drawn from the vocabulary, weighted by how often real systems do it."""
    profile = keys.profile
    dt = _dt(rng)
    key = keys.live()
    roll = rng.random()
    field_name = rng.choice(["name", "city", "notes"] if profile.bidirectional else ["name", "city"])
    value = keys.name() if field_name == "name" else rng.choice(CITIES) if field_name == "city" else "note %d" % rng.randint(0, 99)
    if roll < 0.14 or key is None:
        new = keys.new_key()
        keys.customers.append(new)
        return Insert(dt, new, keys.name(), rng.choice(CITIES))
    if roll < 0.34:
        return Update(dt, key, field_name, value)
    if roll < 0.39:
        return Touch(dt, key)
    if roll < 0.43:
        return UpdateUnmapped(dt, key, "extra %d" % rng.randint(0, 99))
    if roll < 0.48:
        keys.customers.remove(key)
        keys.deleted.append(key)
        return Delete(dt, key)
    if roll < 0.56:
        chosen = rng.sample(keys.customers, rng.randint(1, len(keys.customers)))
        return BulkUpdate(dt, sorted(chosen), "city", rng.choice(CITIES) + " bulk")
    if roll < 0.66:
        if rng.random() < 0.3:
            new = keys.new_key()
            keys.customers.append(new)
            return LateCommit(dt, new, "name", keys.name(), rng.random())
        return LateCommit(dt, key, field_name, value, rng.random())
    if roll < 0.69:
        return Sentinel(dt, key, field_name, value)
    if roll < 0.71:
        return BadText(dt, key)
    if roll < 0.73 and profile.no_primary_key:
        return DuplicateKey(dt, key, keys.name(), rng.choice(CITIES))
    if roll < 0.80:
        crm_field = rng.choice(["name", "address1_city"] + (["description", "emailaddress1"] if profile.bidirectional else []))
        return CrmEdit(dt, key, crm_field, "crm %d" % rng.randint(0, 99))
    if roll < 0.84:
        number = rng.choice([key, key.lower(), "Y%03d" % rng.randint(0, 999)])
        return CrmInsert(dt, "a-%d" % rng.randint(0, 10**9), number, keys.name(), rng.choice(CITIES), email="new@example.com")
    if roll < 0.87 and profile.deletion_policy != "none":
        return CrmDelete(dt, key)
    if profile.contacts and roll < 0.95:
        if rng.random() < 0.5 or not keys.contacts:
            contact = "P%03d" % (len(keys.contacts) + 1)
            keys.contacts.append(contact)
            return ContactInsert(dt, contact, "Person %d" % rng.randint(0, 99), rng.choice(keys.customers + [None]))
        contact = rng.choice(keys.contacts)
        if rng.random() < 0.5:
            return ContactUpdate(dt, contact, "name", "Person %d" % rng.randint(100, 199))
        return ContactUpdate(dt, contact, "company_no", rng.choice(keys.customers + keys.deleted + [None]))
    return Update(dt, key, field_name, value)


# -- the reference model ------------------------------------------------------------------------------------
@dataclass
class Violation:
    """The first invariant a completed sync broke: ``kind`` names the invariant, ``detail`` the records."""

    kind: str
    detail: str

    def __str__(self) -> str:
        return "%s: %s" % (self.kind, self.detail)


ONE_WAY_FIELDS = {"no": "accountnumber", "name": "name", "city": "address1_city"}  # local -> CRM
BI_FIELDS = {"name": "name", "city": "address1_city"}  # bidirectional fields, local -> CRM names
CONTACT_FIELDS = {"no": "contactnumber", "name": "fullname"}


@dataclass
class Model:
    """What the test wrote (plain dicts) and what the contract then requires of each completed sync."""

    profile: Profile
    customers: dict[int, dict[str, Any]] = field(default_factory=dict)  # ERP rowid -> row
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)  # contact no -> row
    test_accounts: set[str] = field(default_factory=set)  # CRM accounts the test created
    couplings: dict[str, dict[str, str]] = field(default_factory=lambda: {"CUSTOMER": {}, "CONTACT": {}})
    ever_coupled: dict[str, set[str]] = field(default_factory=lambda: {"account": set(), "customer": set(), "ccontact": set()})
    dirty: dict[str, set[str]] = field(default_factory=lambda: {"customer": set(), "account": set(), "contact": set()})
    drifted: set[str] = field(default_factory=set)  # CRM accounts edited since the last full sync
    retry: dict[str, set[tuple[str, str]]] = field(default_factory=lambda: {"CUSTOMER": set(), "CONTACT": set()})
    last: dict[str, tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=dict)  # bidirectional: last synchronised values
    newest_read: dict[str, int] = field(default_factory=dict)  # mapping -> newest ERP modified-on its last sync read
    killed: set[str] = field(default_factory=set)  # mappings whose last run was killed
    synced: dict[str, dict[str, Any]] = field(default_factory=dict)  # one-way: ERP mapped values at the last completed sync
    next_rowid: int = 1

    # -- what the test wrote ------------------------------------------------------------------------
    def rows_of(self, key: str) -> list[int]:
        return [rid for rid, row in self.customers.items() if row["no"] == key]

    def first_row(self, key: str) -> int | None:
        rids = self.rows_of(key)
        return rids[0] if rids else None

    def add_customer(self, values: dict[str, Any]) -> int:
        rid = self.next_rowid
        self.next_rowid += 1
        self.customers[rid] = dict(values)
        self.dirty["customer"].add(values["no"])
        return rid

    def partner(self, key: str) -> str | None:
        return self.couplings["CUSTOMER"].get(key)

    def newest_stamp(self, mapping: str) -> int | None:
        """The newest modified-on (not the far-future sentinel) of the ERP rows a sync of ``mapping`` reads."""
        rows = self.customers.values() if mapping == "CUSTOMER" else self.contacts.values()
        stamps = [r["stamp"] for r in rows if r.get("stamp") is not None and r["stamp"] < SENTINEL_US]
        return max(stamps) if stamps else None

    # -- the contract ------------------------------------------------------------------------------------
    def check(self, sync: Sync, before: dict[str, Any], after: dict[str, Any]) -> list[Violation]:
        """What a completed sync broke, judged from the snapshots before and after it."""
        out: list[Violation] = []
        ran = sync.names or (["CUSTOMER", "CONTACT"] if self.profile.contacts else ["CUSTOMER"])
        if "CUSTOMER" in ran:
            self._check_unique(out, "CUSTOMER", after)
            if self.profile.bidirectional:
                self._check_bidirectional(out, sync, before, after)
            else:
                self._check_customers(out, sync, before, after)
            self._check_orphans(out, "CUSTOMER", "account", after, lambda i: i in self.test_accounts)
            if self.profile.bidirectional:
                self._check_orphans(out, "CUSTOMER", "customer", after, lambda i: int(i) in self.customers)
        if "CONTACT" in ran and self.profile.contacts:
            self._check_unique(out, "CONTACT", after)
            self._check_contacts(out, sync, before, after)
            self._check_orphans(out, "CONTACT", "ccontact", after, lambda i: False)
        return out

    def _check_unique(self, out: list[Violation], mapping: str, after: dict[str, Any]) -> None:
        pairs = after["couplings"][mapping]
        if len(set(pairs.values())) != len(pairs):
            seen: dict[str, list[str]] = {}
            for lid, iid in pairs.items():
                seen.setdefault(iid, []).append(lid)
            twice = {iid: lids for iid, lids in seen.items() if len(lids) > 1}
            out.append(Violation("duplicated", "mapping %s: integration records coupled twice: %s" % (mapping, twice)))

    def _check_orphans(self, out: list[Violation], mapping: str, table: str, after: dict[str, Any], by_test: Any) -> None:
        """Every record the engine created is coupled (a record created and not coupled is a duplicate to be)."""
        side = "local" if table == "customer" else "integration"
        coupled = set(after["couplings"][mapping].values()) if side == "integration" else set(after["couplings"][mapping])
        if table == "customer":
            ids = {str(r["no"]) for rid, r in after["customer"].items() if rid not in self.customers}
        else:
            ids = {i for i in after[table] if not by_test(i)}
        orphans = sorted(i for i in ids if i not in coupled and i not in self.ever_coupled[table])
        if orphans:
            out.append(Violation("duplicated", "mapping %s: %s records created by the engine and coupled to nothing: %s"
                                 % (mapping, table, orphans[:5])))

    # one-way customers ----------------------------------------------------------------------------------
    def _live_groups(self) -> dict[str, list[dict[str, Any]]]:
        groups: dict[str, list[dict[str, Any]]] = {}
        for row in self.customers.values():
            groups.setdefault(row["no"], []).append(row)
        return groups

    def _norm(self, value: Any) -> str | None:
        if value is None:
            return None
        text = str(value)
        if self.profile.match_on == "number_ignore_case":
            text = text.strip().casefold()
        return text or None

    def _match_value(self, row: dict[str, Any], side: str) -> str | None:
        if self.profile.match_on == "name":
            return self._norm(row["name"])
        return self._norm(row["no"] if side == "local" else row["accountnumber"])

    def _plan_creates(self, creatable: list[str], groups: dict[str, list[dict[str, Any]]], before: dict[str, Any]) -> dict[str, Any]:
        """For each uncoupled ERP record a run may create: 'create', ('couple', account id), 'ambiguous' or 'unsure'."""
        plan: dict[str, Any] = {}
        if not self.profile.match_on:
            return {k: "create" for k in creatable}
        coupled_before = before["couplings"]["CUSTOMER"]
        stale = {iid for lid, iid in coupled_before.items() if lid not in groups}  # coupled to a deleted customer
        coupled_ids = set(coupled_before.values())
        # rivals: every uncoupled key, with the match values of all its rows (a key held twice is a rival too)
        rivals = {k: {self._match_value(row, "local") for row in rows if not row.get("bad")} for k, rows in groups.items()
                  if k not in coupled_before}
        norms = {k: self._match_value(groups[k][0], "local") for k in creatable}
        for k in creatable:
            norm = norms[k]
            if norm is None:
                plan[k] = "create"
                continue
            same = [o for o, values in rivals.items() if norm in values]
            candidates = [iid for iid, acc in before["account"].items() if self._match_value(acc, "integration") == norm]
            renamed = {iid for lid, iid in coupled_before.items() if lid in groups and self._match_value(groups[lid][0], "local") != norm}
            # a coupled record renamed to this key: its account takes the key during the run, before or after this match
            taking = [lid for lid, iid in coupled_before.items() if lid in groups and self._match_value(groups[lid][0], "local") == norm
                      and iid in before["account"] and self._match_value(before["account"][iid], "integration") != norm]
            if taking or any(c in stale or c in renamed for c in candidates):
                # the order of deletion handling, of the update that renames a candidate, and of matching is not part of the contract
                plan[k] = "unsure"
            elif len(same) > 1:
                plan[k] = "ambiguous"
            elif not candidates:
                plan[k] = "create"
            elif len(candidates) == 1 and candidates[0] not in coupled_ids:
                plan[k] = ("couple", candidates[0])
            else:
                plan[k] = "ambiguous"
        return plan

    def _check_customers(self, out: list[Violation], sync: Sync, before: dict[str, Any], after: dict[str, Any]) -> None:
        p = self.profile
        full = sync.mode == "full"
        cb, ca = before["couplings"]["CUSTOMER"], after["couplings"]["CUSTOMER"]
        acc_b, acc_a = before["account"], after["account"]
        groups = self._live_groups()
        failed = after["failed"]["CUSTOMER"]
        create = full or not p.synch_only

        def pending(k: str) -> bool:
            return full or k in self.dirty["customer"] or ("local", k) in self.retry["CUSTOMER"]

        creatable = []
        for k, rows in sorted(groups.items()):
            if len(rows) > 1:
                if full and ("local", k) not in failed:
                    out.append(Violation("bad-input-not-failed", "customer number %s is held by %d ERP rows and its record did not fail"
                                         % (k, len(rows))))
                continue
            row = rows[0]
            if row.get("bad"):
                if pending(k) and ("local", k) not in failed:
                    out.append(Violation("bad-input-not-failed", "customer %s has undecodable text and did not fail" % k))
                continue
            partner = cb.get(k)
            if partner is not None and partner in acc_b:
                changed = k in self.dirty["customer"] and any(row[lf] != self.synced.get(k, {}).get(lf) for lf in ONE_WAY_FIELDS)
                # why: a touch or an update to the same values leaves the fingerprint as it was: nothing is written
                if full or partner not in self.drifted or ("local", k) in self.retry["CUSTOMER"] or changed:
                    self._expect_equal(out, sync, k, row, ca, acc_a, "drift-not-repaired" if full and partner in self.drifted else None)
                unchanged = k not in self.dirty["customer"] and ("local", k) not in self.retry["CUSTOMER"]
                # why: after a killed run the engine cannot know which writes went out before the kill: one rewrite is its price
                if unchanged and self._same(row, acc_b[partner]) and "CUSTOMER" not in self.killed:
                    if partner in acc_a and acc_a[partner]["writes"] != acc_b[partner]["writes"]:
                        out.append(Violation("rewritten", "account %s of customer %s was written although neither side changed"
                                             % (partner, k)))
            elif partner is not None:
                if full and p.deletion_policy != "none" and ca.get(k) == partner:
                    out.append(Violation("deletion", "customer %s is still coupled to deleted account %s after a full sync (%s)"
                                         % (k, partner, p.deletion_policy)))
                # why: remove_coupling leaves the record uncoupled; the next run creates it like any uncoupled record
            elif (create and (pending(k) or k in ca)) or ("local", k) in self.retry["CUSTOMER"]:
                creatable.append(k)  # a failed record is retried by every run, even where scheduled runs create nothing
            elif k not in self.killed_keys() and k in ca:
                out.append(Violation("created-in-modified", "customer %s was coupled by a modified run although synch_only_coupled_records"
                                     " is true" % k))
        plan = self._plan_creates(creatable, groups, before)
        for k in creatable:
            decision = plan[k]
            row = groups[k][0]
            if decision == "create":
                iid = self._expect_equal(out, sync, k, row, ca, acc_a, None)
                if iid is not None and iid in acc_b and iid in self.test_accounts:  # not an account a killed run created
                    out.append(Violation("matched-not-created", "customer %s was coupled to existing account %s (%r) although no"
                                         " match field equals it exactly" % (k, iid, acc_b[iid]["accountnumber"])))
            elif decision == "ambiguous":
                self._expect_ambiguous(out, k, row, ca, acc_b, acc_a, failed)
            elif decision != "unsure":
                iid = self._expect_equal(out, sync, k, row, ca, acc_a, None)
                if iid is not None and iid != decision[1]:
                    out.append(Violation("match-not-coupled", "customer %s was coupled to %s, not to its one uncoupled match %s"
                                         % (k, iid, decision[1])))
        if full:
            self._check_deleted_customers(out, groups, cb, ca, acc_b, acc_a)

    def killed_keys(self) -> set[str]:
        """Customers a killed run may have created (the next run couples them from its intents)."""
        return set(k for k in self._live_groups()) if "CUSTOMER" in self.killed else set()

    def _same(self, row: dict[str, Any], account: dict[str, Any]) -> bool:
        return all(row[lf] == account[cf] for lf, cf in ONE_WAY_FIELDS.items())

    def _expect_equal(self, out: list[Violation], sync: Sync, k: str, row: dict[str, Any], ca: dict[str, str], acc_a: dict[str, Any],
                      kind: str | None) -> str | None:
        iid = ca.get(k)
        if iid is None:
            out.append(Violation("lost", "customer %s (%s) is not coupled after a %s sync" % (k, _short(row), sync.mode)))
            return None
        account = acc_a.get(iid)
        if account is None:
            out.append(Violation("lost", "customer %s is coupled to account %s, which does not exist" % (k, iid)))
            return iid
        differ = {lf: (row[lf], account[cf]) for lf, cf in ONE_WAY_FIELDS.items() if row[lf] != account[cf]}
        if differ:
            out.append(Violation(kind or "not-synchronised", "customer %s -> account %s after a %s sync: (ERP, CRM) values differ: %s"
                                 % (k, iid, sync.mode, differ)))
        return iid

    def _expect_ambiguous(self, out: list[Violation], k: str, row: dict[str, Any], ca: dict[str, str], acc_b: dict[str, Any],
                          acc_a: dict[str, Any], failed: dict[tuple[str, str], str]) -> None:
        norm = self._match_value(row, "local")
        created = [iid for iid, acc in acc_a.items() if iid not in acc_b and self._match_value(acc, "integration") == norm]
        if created:
            out.append(Violation("ambiguous-duplicated", "customer %s matches ambiguously (%r) and account %s was created"
                                 % (k, norm, created)))
        elif k in ca:
            out.append(Violation("ambiguous-coupled", "customer %s matches ambiguously (%r) and was coupled to %s" % (k, norm, ca[k])))
        elif "ambiguous" not in (failed.get(("local", k)) or ""):
            out.append(Violation("ambiguous-not-failed", "customer %s matches ambiguously (%r); its record did not fail with"
                                 " 'ambiguous match' (failed: %r)" % (k, norm, failed.get(("local", k)))))

    def _check_deleted_customers(self, out: list[Violation], groups: dict[str, Any], cb: dict[str, str], ca: dict[str, str],
                                 acc_b: dict[str, Any], acc_a: dict[str, Any]) -> None:
        p = self.profile
        for k, iid in sorted(cb.items()):
            if k in groups or p.deletion_policy == "none":
                continue
            if k in ca:
                out.append(Violation("deletion", "customer %s was deleted; its coupling remains (%s)" % (k, p.deletion_policy)))
            elif p.propagate and iid in acc_b and iid not in self.drifted and iid in acc_a:
                out.append(Violation("deletion", "customer %s was deleted and propagate_deletions is true; account %s remains" % (k, iid)))
            elif not p.propagate and iid in acc_b and iid not in acc_a:
                out.append(Violation("deletion", "customer %s was deleted; account %s was deleted without propagate_deletions" % (k, iid)))

    # contacts (a lookup through CUSTOMER) -----------------------------------------------------------------
    def _check_contacts(self, out: list[Violation], sync: Sync, before: dict[str, Any], after: dict[str, Any]) -> None:
        full = sync.mode == "full"
        cb, ca = before["couplings"]["CONTACT"], after["couplings"]["CONTACT"]
        customers = after["couplings"]["CUSTOMER"]
        crm = after["ccontact"]
        for k, row in sorted(self.contacts.items()):
            pending = full or k in self.dirty["contact"] or ("local", k) in self.retry["CONTACT"]
            company = row["company_no"]
            parent = customers.get(company) if company is not None else None
            if company is not None and parent is None:
                continue  # its customer is not coupled: the contact fails until it is
            creatable = full or not self.profile.contacts_synch_only or ("local", k) in self.retry["CONTACT"]
            if k not in cb and not (creatable and pending):
                if k in ca and "CONTACT" not in self.killed:
                    out.append(Violation("created-in-modified", "contact %s was coupled by a modified run although synch_only_coupled_records"
                                         " is true" % k))
                continue
            if k in cb and not pending and not full:
                continue
            cid = ca.get(k)
            target = crm.get(cid) if cid is not None else None
            if target is None:
                out.append(Violation("lost", "contact %s (company %s, coupled %s) has no coupled CRM contact after a %s sync"
                                     % (k, company, parent, sync.mode)))
                continue
            want = {"contactnumber": k, "fullname": row["name"], "parentcustomerid": parent}
            differ = {f: (v, target[f]) for f, v in want.items() if target[f] != v}
            if differ:
                out.append(Violation("not-synchronised", "contact %s -> %s after a %s sync: (expected, CRM) differ: %s"
                                     % (k, cid, sync.mode, differ)))

    # bidirectional customers ---------------------------------------------------------------------------------
    def _check_bidirectional(self, out: list[Violation], sync: Sync, before: dict[str, Any], after: dict[str, Any]) -> None:
        p = self.profile
        full = sync.mode == "full"
        cb, ca = before["couplings"]["CUSTOMER"], after["couplings"]["CUSTOMER"]
        local_b = {str(r["no"]): r for r in before["customer"].values()}
        local_a = {str(r["no"]): r for r in after["customer"].values()}
        acc_b, acc_a = before["account"], after["account"]
        failed = after["failed"]["CUSTOMER"]
        create = full or not p.synch_only
        bad = {r["no"] for r in self.customers.values() if r.get("bad")}  # undecodable text: the record fails alone
        for k, iid in sorted(cb.items()):
            if k not in local_b or iid not in acc_b or k not in self.last or k in bad:
                continue  # deletions: see the structural checks
            pending = (full or k in self.dirty["customer"] or iid in self.dirty["account"]
                       or ("local", k) in self.retry["CUSTOMER"] or ("integration", iid) in self.retry["CUSTOMER"])
            if not pending:
                continue
            self._check_pair(out, sync, k, iid, local_b[k], acc_b[iid], local_a.get(k), acc_a.get(iid), failed)
        for k, row in sorted(local_b.items()):
            if k in cb or k in bad or not (create or ("local", k) in self.retry["CUSTOMER"]):
                continue
            if not (full or k in self.dirty["customer"] or ("local", k) in self.retry["CUSTOMER"]):
                continue
            iid = ca.get(k)
            account = acc_a.get(iid) if iid else None
            if account is None:
                out.append(Violation("lost", "customer %s (%s) has no coupled account after a %s sync" % (k, _short(row), sync.mode)))
            elif (account["name"], account["address1_city"], account["description"]) != (row["name"], row["city"], row["notes"]):
                out.append(Violation("not-synchronised", "customer %s created as account %s with other values: %s"
                                     % (k, iid, _short(account))))
        coupled_accounts = set(cb.values())
        local_of = {iid: lid for lid, iid in ca.items()}
        for iid, account in sorted(acc_b.items()):
            if iid in coupled_accounts or not create:
                continue
            if not (full or iid in self.dirty["account"] or ("integration", iid) in self.retry["CUSTOMER"]):
                continue
            lid = local_of.get(iid)
            row = local_a.get(lid) if lid else None
            if row is None:
                out.append(Violation("lost", "account %s (%s) has no coupled customer after a %s sync" % (iid, _short(account), sync.mode)))
            elif (row["name"], row["city"], row["email"]) != (account["name"], account["address1_city"], account["emailaddress1"]):
                out.append(Violation("not-synchronised", "account %s created as customer %s with other values: %s" % (iid, lid, _short(row))))
        if full and p.deletion_policy != "none":
            for k, iid in sorted(ca.items()):
                if k in bad and ("local", k) in failed:
                    continue  # its undecodable text fails the record before its deletion is handled
                if k not in local_a or iid not in acc_a:
                    out.append(Violation("deletion", "after a full sync customer %s is coupled to account %s and one of them is gone"
                                         % (k, iid)))

    def _check_pair(self, out: list[Violation], sync: Sync, k: str, iid: str, lb: dict[str, Any], ib: dict[str, Any],
                    la: dict[str, Any] | None, ia: dict[str, Any] | None, failed: dict[tuple[str, str], str]) -> None:
        """A coupled pair a sync read: what flows where, and whether it is a conflict.

        Both sides changing bidirectional fields is a conflict; with the same field changed to different values
        on both sides it must be resolved by the policy (merge: by merge_fallback); with different fields, a
        record-level policy may fail the record (none) or let its winner take every field, or merge the edits.
        One-way fields never conflict and flow their way.
        """
        if la is None or ia is None:
            out.append(Violation("lost", "customer %s / account %s vanished during a sync" % (k, iid)))
            return
        last_local, last_crm = self.last[k]
        local_changed = {lf for lf in BI_FIELDS if lb[lf] != last_local[lf]}
        crm_changed = {lf for lf, cf in BI_FIELDS.items() if ib[cf] != last_crm[cf]}
        same_field = {lf for lf in local_changed & crm_changed if lb[lf] != ib[BI_FIELDS[lf]]}
        both_sides = bool(local_changed and crm_changed) and any(lb[lf] != ib[cf] for lf, cf in BI_FIELDS.items())
        policy = self.profile.conflict if self.profile.conflict != "merge" else self.profile.merge_fallback
        winner = {"local_wins": "local", "integration_wins": "integration"}.get(policy)
        must_fail = bool(same_field) and winner is None
        may_fail = must_fail or (both_sides and self.profile.conflict == "none")
        is_failed = ("local", k) in failed or ("integration", iid) in failed
        pair = "customer %s / account %s" % (k, iid)
        if must_fail and not is_failed:
            out.append(Violation("conflict-not-failed", "%s: both sides changed %s (policy %s) and the record did not fail"
                                 % (pair, sorted(same_field), self.profile.conflict)))
            return
        if is_failed:
            if not may_fail:
                reason = failed.get(("local", k)) or failed.get(("integration", iid))
                out.append(Violation("false-conflict", "%s failed (%s) although the bidirectional fields changed were ERP %s, CRM %s"
                                     % (pair, reason, sorted(local_changed), sorted(crm_changed))))
                return
            overwritten = {lf: (lb[lf], la[lf], ib[cf], ia[cf]) for lf, cf in BI_FIELDS.items() if la[lf] != lb[lf] or ia[cf] != ib[cf]}
            if overwritten:
                out.append(Violation("conflict-overwritten", "%s: a conflict (policy %s) overwrote %s"
                                     % (pair, self.profile.conflict, overwritten)))
            return
        record_level = both_sides and self.profile.conflict != "merge"
        for lf, cf in BI_FIELDS.items():
            if la[lf] != ia[cf]:
                out.append(Violation("not-synchronised", "%s: field %s differs after the sync (ERP %r, CRM %r)" % (pair, lf, la[lf], ia[cf])))
                return
            allowed = None
            if lf in same_field:
                allowed = {lb[lf] if winner == "local" else ib[cf]}
            elif lf in local_changed:
                allowed = {lb[lf], ib[cf]} if record_level and winner == "integration" else {lb[lf]}
            elif lf in crm_changed:
                allowed = {lb[lf], ib[cf]} if record_level and winner == "local" else {ib[cf]}
            if allowed is not None and la[lf] not in allowed:
                expected = " or ".join(map(repr, allowed))
                out.append(Violation("not-synchronised", "%s: field %s is %r after the sync, expected %s" % (pair, lf, la[lf], expected)))
                return
        if lb["notes"] != last_local["notes"] and ia["description"] != lb["notes"]:
            out.append(Violation("one-way-field", "%s: ERP notes changed to %r; CRM description is %r" % (pair, lb["notes"], ia["description"])))
        if ib["emailaddress1"] != last_crm["emailaddress1"] and la["email"] != ib["emailaddress1"]:
            out.append(Violation("one-way-field", "%s: CRM emailaddress1 changed to %r; ERP email is %r" % (pair, ib["emailaddress1"], la["email"])))

    # -- after a sync ----------------------------------------------------------------------------------------------
    def read_by(self, sync: Sync) -> list[str]:
        names = sync.names or (["CUSTOMER", "CONTACT"] if self.profile.contacts else ["CUSTOMER"])
        return [n for n in names if n != "CONTACT" or self.profile.contacts]

    def attempted(self, sync: Sync) -> None:
        """A run started: the newest stamp it reads, never older than one an earlier run read (late commits count back
        from it, as the watermark does: a record stamped later and then changed again does not take it back)."""
        for name in self.read_by(sync):
            stamp = self.newest_stamp(name)
            if stamp is not None:
                self.newest_read[name] = max(stamp, self.newest_read.get(name, stamp))

    def adopt(self, sync: Sync, before: dict[str, Any], after: dict[str, Any], killed: bool) -> None:
        """After a run: a killed one leaves every change pending; a completed one settles what it checked."""
        if killed:
            self.killed.update(self.read_by(sync))
            self._settled_by_uncoupling(before, after)
            if self.profile.bidirectional:
                self._adopt_agreeing(after)
            return
        for name in self.read_by(sync):
            self.killed.discard(name)
            pairs = after["couplings"][name]
            self.couplings[name] = dict(pairs)
            self.retry[name] = set(after["failed"][name])
            if name == "CUSTOMER":
                self.synced = {row["no"]: {lf: row[lf] for lf in ONE_WAY_FIELDS} for row in self.customers.values()}
                self.ever_coupled["account"].update(pairs.values())
                self.ever_coupled["customer"].update(pairs)
                self.dirty["customer"].clear()
                self.dirty["account"].clear()
                if sync.mode == "full":
                    self.drifted.clear()
                if self.profile.bidirectional:
                    self._adopt_bidirectional(after)
            else:
                self.ever_coupled["ccontact"].update(pairs.values())
                self.dirty["contact"].clear()

    def _adopt_agreeing(self, after: dict[str, Any]) -> None:
        """After a killed run, a coupled pair whose two records agree in every mapped field was written by it (or edited
        alike on both sides): either way what they hold is what both sides last had in common, and a later change
        on one side only is no conflict (the engine keeps what an uncommitted update wrote, see _recover_updates)."""
        by_key = {str(r["no"]): r for r in after["customer"].values()}
        for k, iid in after["couplings"]["CUSTOMER"].items():
            row, account = by_key.get(k), after["account"].get(iid)
            if k not in self.last or row is None or account is None:
                continue
            if all(row[lf] == account[cf] for lf, cf in BI_FIELDS.items()) and row["notes"] == account["description"] \
                    and row["email"] == account["emailaddress1"]:
                self.last[k] = ({f: row[f] for f in ("name", "city", "notes", "email")},
                                {f: account[f] for f in ("name", "address1_city", "description", "emailaddress1")})

    def _settled_by_uncoupling(self, before: dict[str, Any], after: dict[str, Any]) -> None:
        """A killed run that removed the coupling of a pair one side of which is gone settled that record's change, as a
        completed run does: the record left waits uncoupled for its next change or a full sync (remove_coupling)."""
        cb, ca = before["couplings"]["CUSTOMER"], after["couplings"]["CUSTOMER"]
        local_keys = {str(r["no"]) for r in after["customer"].values()}
        for k, iid in cb.items():
            if ca.get(k) != iid and (iid not in after["account"] or k not in local_keys):
                self.dirty["customer"].discard(k)
                self.dirty["account"].discard(iid)

    def _adopt_bidirectional(self, after: dict[str, Any]) -> None:
        failed = after["failed"]["CUSTOMER"]
        by_key = {str(r["no"]): (rid, r) for rid, r in after["customer"].items()}
        for rid, row in after["customer"].items():
            if rid in self.customers:
                self.customers[rid].update({f: row[f] for f in ("name", "city", "email", "notes")})
            else:  # created by the engine from a CRM account
                self.customers[rid] = dict(row, stamp=None, extra=None)
        for k, iid in after["couplings"]["CUSTOMER"].items():
            if k not in by_key or iid not in after["account"]:
                continue
            if k in self.last and (("local", k) in failed or ("integration", iid) in failed):
                continue  # a conflict left both sides as they were: the last synchronised values stay
            row, account = by_key[k][1], after["account"][iid]
            self.last[k] = ({f: row[f] for f in ("name", "city", "notes", "email")},
                            {f: account[f] for f in ("name", "address1_city", "description", "emailaddress1")})


def _short(row: dict[str, Any]) -> str:
    return ", ".join("%s=%r" % (k, v) for k, v in row.items() if k in ("no", "name", "city", "accountnumber", "address1_city"))


# -- the steps, applied to the databases and to the model ------------------------------------------------------
# ``db.run(database, sql, *params)`` writes one statement to "erp" or "crm" (the harness commits it); ``now`` is
# the test clock in microseconds.
def _stamp(model: Model, database: str, now: int) -> tuple[Any, int]:
    form = model.profile.local_form if database == "erp" else model.profile.crm_form
    return form.render(now), form.stored(now)


def _set_customer(model: Model, db: Any, rid: int, values: dict[str, Any], now: int) -> None:
    rendered, stored = _stamp(model, "erp", now)
    names = sorted(values)
    assignments = "".join("%s = ?, " % n for n in names)
    db.run("erp", "UPDATE customer SET %smodified_on = ?, test_edit = test_edit + 1 WHERE rowid = ?" % assignments,
           *[values[n] for n in names], rendered, rid)
    row = model.customers[rid]
    row.update(values)
    row["stamp"] = stored
    row["bad"] = False if "name" in values else row.get("bad", False)
    if any(n in ("no", "name", "city", "notes", "email") for n in names):
        model.dirty["customer"].add(row["no"])


def apply_insert(model: Model, db: Any, step: Insert, now: int) -> None:
    if model.first_row(step.key) is not None:
        return
    rendered, stored = _stamp(model, "erp", now)
    rid = model.add_customer({"no": step.key, "name": step.name, "city": step.city, "notes": step.notes, "email": step.email,
                              "extra": None, "stamp": stored})
    db.run("erp", "INSERT INTO customer (rowid, no, name, city, notes, email, modified_on) VALUES (?, ?, ?, ?, ?, ?, ?)",
           rid, step.key, step.name, step.city, step.notes, step.email, rendered)


def apply_update(model: Model, db: Any, step: Update, now: int) -> None:
    rid = model.first_row(step.key)
    if rid is not None:
        _set_customer(model, db, rid, {step.field: step.value}, now)


def apply_touch(model: Model, db: Any, step: Touch, now: int) -> None:
    rid = model.first_row(step.key)
    if rid is not None:
        _set_customer(model, db, rid, {}, now)


def apply_update_unmapped(model: Model, db: Any, step: UpdateUnmapped, now: int) -> None:
    rid = model.first_row(step.key)
    if rid is not None:
        _set_customer(model, db, rid, {"extra": step.value}, now)


def apply_delete(model: Model, db: Any, step: Delete, now: int) -> None:
    for rid in model.rows_of(step.key):
        db.run("erp", "DELETE FROM customer WHERE rowid = ?", rid)
        del model.customers[rid]


def apply_bulk_update(model: Model, db: Any, step: BulkUpdate, now: int) -> None:
    for key in step.keys:
        rid = model.first_row(key)
        if rid is not None:
            _set_customer(model, db, rid, {step.field: step.value}, now)


def apply_late_commit(model: Model, db: Any, step: LateCommit, now: int) -> None:
    newest = model.newest_read.get("CUSTOMER")
    if newest is not None:
        # why: at least a second inside the overlap, so the column's precision cannot push it out
        now = newest - int(step.back * max(model.profile.overlap - 1, 0) * SECOND)
    rid = model.first_row(step.key)
    if rid is None:
        apply_insert(model, db, Insert(0, step.key, step.value, "Late"), now)
    else:
        _set_customer(model, db, rid, {step.field: step.value}, now)


def apply_sentinel(model: Model, db: Any, step: Sentinel, now: int) -> None:
    rid = model.first_row(step.key)
    if rid is not None:
        _set_customer(model, db, rid, {step.field: step.value}, SENTINEL_US)


def apply_bad_text(model: Model, db: Any, step: BadText, now: int) -> None:
    rid = model.first_row(step.key)
    if rid is None:
        return
    rendered, stored = _stamp(model, "erp", now)
    db.run("erp", "UPDATE customer SET name = CAST(X'426164fffe' AS TEXT), modified_on = ? WHERE rowid = ?", rendered, rid)
    row = model.customers[rid]
    row.update(name="Bad\ufffd\ufffd", stamp=stored, bad=True)
    model.dirty["customer"].add(row["no"])


def apply_duplicate_key(model: Model, db: Any, step: DuplicateKey, now: int) -> None:
    if model.first_row(step.key) is None:
        return
    rendered, stored = _stamp(model, "erp", now)
    rid = model.add_customer({"no": step.key, "name": step.name, "city": step.city, "notes": None, "email": None, "extra": None,
                              "stamp": stored})
    db.run("erp", "INSERT INTO customer (rowid, no, name, city, modified_on) VALUES (?, ?, ?, ?, ?)", rid, step.key, step.name, step.city,
           rendered)


def apply_crm_insert(model: Model, db: Any, step: CrmInsert, now: int) -> None:
    if step.accountid in model.test_accounts:
        return
    rendered, _stored = _stamp(model, "crm", now)
    db.run("crm", "INSERT INTO account (accountid, accountnumber, name, address1_city, emailaddress1, modifiedon) VALUES (?, ?, ?, ?, ?, ?)",
           step.accountid, step.number, step.name, step.city, step.email, rendered)
    model.test_accounts.add(step.accountid)
    model.dirty["account"].add(step.accountid)


def apply_crm_edit(model: Model, db: Any, step: CrmEdit, now: int) -> None:
    iid = model.partner(step.key)
    if iid is None:
        return
    rendered, _stored = _stamp(model, "crm", now)
    db.run("crm", "UPDATE account SET %s = ?, modifiedon = ?, test_edit = test_edit + 1 WHERE accountid = ?" % step.field,
           step.value, rendered, iid)
    model.dirty["account"].add(iid)
    model.drifted.add(iid)


def apply_crm_delete(model: Model, db: Any, step: CrmDelete, now: int) -> None:
    iid = model.partner(step.key)
    if iid is not None:
        db.run("crm", "DELETE FROM account WHERE accountid = ?", iid)


def apply_contact_insert(model: Model, db: Any, step: ContactInsert, now: int) -> None:
    if step.key in model.contacts:
        return
    rendered, stored = _stamp(model, "erp", now)
    db.run("erp", "INSERT INTO contact (no, name, company_no, modified_on) VALUES (?, ?, ?, ?)", step.key, step.name, step.company, rendered)
    model.contacts[step.key] = {"no": step.key, "name": step.name, "company_no": step.company, "stamp": stored}
    model.dirty["contact"].add(step.key)


def apply_contact_update(model: Model, db: Any, step: ContactUpdate, now: int) -> None:
    if step.key not in model.contacts:
        return
    rendered, stored = _stamp(model, "erp", now)
    db.run("erp", "UPDATE contact SET %s = ?, modified_on = ? WHERE no = ?" % step.field, step.value, rendered, step.key)
    model.contacts[step.key].update({step.field: step.value, "stamp": stored})
    model.dirty["contact"].add(step.key)


STEP_FUNCTIONS = {
    Insert: apply_insert, Update: apply_update, Touch: apply_touch, UpdateUnmapped: apply_update_unmapped, Delete: apply_delete,
    BulkUpdate: apply_bulk_update, LateCommit: apply_late_commit, Sentinel: apply_sentinel, BadText: apply_bad_text,
    DuplicateKey: apply_duplicate_key, CrmInsert: apply_crm_insert, CrmEdit: apply_crm_edit, CrmDelete: apply_crm_delete,
    ContactInsert: apply_contact_insert, ContactUpdate: apply_contact_update,
}
