# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Phase 1: Foundations
#
# Welcome to the first phase of the course. You will learn what a distributed transaction is
# and why the obvious way of programming one loses money, then what each letter of ACID asks
# of a system whose data lives at several sites. Along the way you will run a naive money
# transfer between two real databases, crash it, and draw what happened; and you will draw
# precedence graphs of histories that span several sites.
#
# Run the cells from the top. The first cells check that the course package is installed and
# choose where your progress is recorded.

# %% dtcourse={"locked": true}
import dtcourse
from dtcourse.runtime.notebook import setup

setup("0.2.0")

# %% tags=["parameters"]
# Settings for unattended runs (papermill, grading); you can leave them as they are.
progress_store = None  # where progress is recorded; None means your usual store
seed = 2026  # seed of the random workloads in the hands-on cells
transfers_per_run = 12  # transfers in those workloads
ci = False  # True in continuous integration: smaller runs where it matters

# %% dtcourse={"locked": true}
setup("0.2.0", progress_store)

# %% [markdown]
# ## Your reading list
#
# The readings of this phase, in order, with their exercises. When you have worked through
# a reading, mark it as read in the widget below; the checklist at the end of the notebook
# follows your progress.
#
# <!-- resources:phase1 -->
# **Phase 1: Foundations**: 2 readings, 20 points of exercises; reading 65 minutes + exercises about 75 minutes.
#
# 1. **Distributed Transaction Basics** (Article, reading 30 minutes + exercises about 30 minutes). Focus: Understanding what distributed transactions are and why they're needed.
#    - Exercise `p1.transfer`: Catch the broken money transfer (10 points, about 30 minutes)
#    - Next step: Move to resource 2
# 2. **ACID in Distributed Systems** (Article, reading 35 minutes + exercises about 45 minutes). Focus: How ACID properties apply to distributed transactions.
#    - Exercise `p1.serializability`: Serializability across sites (10 points, about 45 minutes)
#    - Next step: Move to Phase 2
# <!-- /resources -->

# %%
from dtcourse.runtime.widgets import resource_list

resource_list("phase1")

# %% [markdown]
# <!-- resource:p1.basics -->
# ## 1. Distributed Transaction Basics
#
# *Article · reading 30 minutes + exercises about 30 minutes · Focus: Understanding what distributed transactions are and why they're needed*
# <!-- /resource -->

# %% [markdown]
# You already know what a transaction does inside one database: a group of reads and writes
# that either takes effect completely or not at all, and that does not trip over other
# transactions running at the same time. This resource asks what happens when the data a
# transaction touches does not live in one database any more. By the end you should be able
# to say precisely what a distributed transaction is, why the obvious way of programming one
# loses money, which kinds of failure we have to plan for, and which two problems every
# distributed transaction system has to solve.

# %% [markdown]
# ### One transaction, several places
#
# A **distributed transaction** is a transaction whose reads and writes touch data held by
# two or more independent systems, each with its own storage, its own log and its own
# failure behaviour. Each system runs a piece of the work, called a *branch* or
# *subtransaction*, and the whole thing must still behave like one transaction.
#
# Two examples will follow us through the course.
#
# **Money transfer between two banks.** Alice has an account at Bank A, Bob at Bank B. Each
# bank runs its own database. Moving 100 from Alice to Bob means a debit in one database and
# a credit in the other:
#
# ```
# Bank A database                     Bank B database
# accounts(id, balance)               accounts(id, balance)
#   alice   500   -- debit 100 -->      bob     200   -- credit 100
# ```
#
# **An order in an online shop.** Placing an order reserves stock in the inventory service,
# charges the card through the payments service, and inserts a row in the orders service.
# Each service owns its own database; none can see into the others.
#
# Compare this with a **local transaction**, which runs inside a single database engine. There
# the engine alone decides whether the transaction commits: it writes a commit record to its
# log, and at that moment the transaction has happened. In a distributed transaction no
# single log holds the truth. Each site can decide only for itself, and the sites have to
# *agree* on the outcome by sending messages over a network that may lose, delay or reorder
# them, while any of them may crash.
#
# | | local transaction | distributed transaction |
# |---|---|---|
# | who decides commit or abort | one engine | several sites, which must agree |
# | where the commit point is | one log record | a protocol spread over sites and messages |
# | what can fail halfway | the process (recovered from its own log) | any site, any message, independently |
# | typical extra cost | one forced log write | extra message round trips and forced writes at every site |

# %% [markdown]
# ### The naive transfer, and how it goes wrong
#
# The tempting way to program the transfer is two ordinary transactions, one per bank:
#
# ```
# -- step 1, on Bank A
# BEGIN; UPDATE accounts SET balance = balance - 100 WHERE id = 'alice'; COMMIT;
# -- step 2, on Bank B
# BEGIN; UPDATE accounts SET balance = balance + 100 WHERE id = 'bob'; COMMIT;
# ```
#
# Each step is perfectly atomic *on its own site*. The trouble is the gap between them. The
# program running the transfer (call it the client) can crash after step 1 commits and
# before step 2 starts. Bank A has committed the debit; Bank B never hears of the credit. The
# two sites reach different outcomes for what was meant to be one transaction: this is a
# **partial failure**, and it is the defining problem of distributed systems. Here it
# destroys 100 units of money.
#
# Reversing the order does not help; it just changes the sign of the error. Credit first,
# then debit, and a crash in between *creates* 100 units out of nothing. Retrying does not
# help either unless the steps are idempotent: if the client times out waiting for Bank B's
# reply, it cannot tell whether the credit was lost or merely slow. Retrying a credit that in
# fact succeeded pays Bob twice.
#
# | what happens | Alice | Bob | total money (was 700) |
# |---|---|---|---|
# | both steps commit | 400 | 300 | 700 |
# | crash after debit, before credit | 400 | 200 | **600**: money destroyed |
# | credit first, crash before debit | 500 | 300 | **800**: money created |
# | credit retried after a lost reply | 400 | 400 | **800**: money created |
# | Bank B rejects the credit (account closed) after the debit committed | 400 | 200 | **600**, and nobody undoes the debit |
#
# The last row matters as much as the crashes. A site may refuse its part for a business
# reason (an account is frozen, the stock is gone, a constraint would be violated). A correct
# distributed transaction lets any site **veto** the whole thing, and then *no* site may keep
# its changes.

# %% [markdown]
# Here is that crash, run for real. Bank A and bank B are two SQLite databases; the client
# commits the debit at bank A with one local transaction, then crashes before it sends the
# credit to bank B. The diagram is drawn from the trace of the run: time flows down, arrows
# are messages, a filled square is a forced (durable) commit at a bank, the cross is the
# client crashing.

# %%
from dtcourse.lessons.naive_transfer import demo
from dtcourse.pictures.sequence import sequence_diagram

lost = demo("crash_between")
print(lost.summary())
sequence_diagram(lost.trace, title="Naive transfer: the client crashes after the debit commits")

# %% [markdown]
# Every row of the table above can be reproduced the same way. The cell below runs the
# reading's transfer (Alice sends 100 to Bob) once per fault and per order of the two steps,
# against fresh databases each time, and tabulates what the banks hold afterwards. Change
# it and rerun it; to see the retried credit applied twice, look at
# `demo("lost_reply_retry").banks["bank-b"].ledger`.

# %%
import pandas as pd

from dtcourse.lessons.naive_transfer import FAULTS, ORDERS

rows = []
for order in ORDERS:
    for fault in FAULTS:
        run = demo(fault, order)
        rows.append(
            {
                "order": order,
                "fault": fault,
                "alice": run.banks["bank-a"].balances["alice"],
                "bob": run.banks["bank-b"].balances["bob"],
                "total": run.total,
            }
        )
pd.DataFrame(rows)

# %% [markdown]
# With more accounts and transfers the damage is harder to see by eye. The next cell runs a
# random workload over three banks (every transfer crosses banks) and breaks a few transfers
# at random, with the faults of the table that leave the banks disagreeing. The total
# usually no longer matches (and when two errors cancel out, it does, yet transfers are still
# broken); *which* transfers broke is what the exercise at the end of this reading asks you
# to find.

# %%
import random

from dtcourse.lessons.naive_transfer import BREAKING_FAULTS, random_workload, run_transfers

opening, planned = random_workload(seed, banks=3, accounts=6, transfers=transfers_per_run)
rng = random.Random(seed)
victims = rng.sample(planned, k=min(3, len(planned)))
faults = {t.id: rng.choice(sorted(BREAKING_FAULTS)) for t in victims}
busy = run_transfers(opening, planned, faults)
print("faults injected:", faults)
print(busy.summary())

# %% [markdown]
# So there are two things a correct protocol must guarantee. **No half-applied transfer:**
# either both the debit and the credit take effect, or neither does, whatever crashes and
# whichever site refuses. And, as a consequence, **money is conserved**: the sum of balances
# across both banks is the same before and after every transfer. The first is the property
# the protocol is built to provide; the second is the application invariant that the first
# protects, and it is the one you can check from the outside.

# %% [markdown]
# ### Two problems: atomic commitment and concurrency control
#
# MIT's distributed systems course summarises the subject in one line: distributed
# transactions = concurrency control + atomic commit [Morris 2020]. The two halves are
# different problems with different solutions, and it pays to keep them apart.
#
# **Atomic commitment** is about failures. All sites that take part must reach the *same*
# decision, commit or abort, even if some crash or messages are lost, and they may commit
# only if every site was willing to. Two-phase commit, the subject of Phase 2, is the
# classic atomic commitment protocol [Gray 1978; Bernstein et al. 1987, ch. 7].
#
# **Concurrency control** is about other transactions. While our transfer runs, an auditor
# may be summing all balances, and another transfer may be debiting Alice at the same time.
# Each site already isolates its local transactions, usually with locks or multiversioning,
# but isolation at every site separately does not make the *combined* execution equivalent
# to some serial order. The next resource shows a two-site history in which every site is
# serializable and the whole is not.
#
# The two meet in practice: the usual recipe is strict two-phase locking at every site,
# holding locks until the atomic commitment protocol has decided, which is exactly why a slow
# or crashed coordinator leaves locks held and other transactions waiting (Phase 2 returns to
# this) [Kleppmann 2017, ch. 9].

# %% [markdown]
# ### Where distributed transactions appear
#
# Kleppmann distinguishes two families [Kleppmann 2017, ch. 9]:
#
# - **Database-internal distributed transactions**: one distributed database whose data is
#   split into partitions (shards) on different machines. All participants run the same
#   software, so the protocol can be tailored. Google's Spanner runs two-phase commit across
#   groups of replicas that each agree through Paxos [Corbett et al. 2012]; CockroachDB,
#   TiDB and many sharded databases do similar things.
# - **Heterogeneous distributed transactions**: participants are different products, for
#   example two different databases, or a database and a message broker. They need a
#   standard interface. The X/Open XA specification defines how a *transaction manager*
#   drives several *resource managers* through prepare and commit [X/Open 1991]. PostgreSQL
#   exposes its side of this as `PREPARE TRANSACTION`, `COMMIT PREPARED` and
#   `ROLLBACK PREPARED`; its documentation warns that the feature is "not intended for use
#   in applications or interactive sessions" but for an external transaction manager
#   [PostgreSQL n.d.]. You will drive exactly these commands from Python later in the course.
#
# And there is a third place where the *problem* appears but the protocol often does not:
# **microservices**. Each service owns its data, so an order that touches inventory, payments
# and orders is a distributed transaction by definition. Many teams deliberately avoid
# atomic commitment there and use sagas and messaging patterns instead; Phase 3 explains
# why and how. Gray's 1981 paper on the transaction concept already discussed these limits
# for long-lived work [Gray 1981].

# %% [markdown]
# ### The failure model: what we plan for
#
# A protocol is only correct *with respect to a failure model*: a statement of what can go
# wrong. Getting this explicit is half the subject [Kleppmann 2021]. The course uses the vocabulary below
# throughout, and the simulator and model checker inject exactly these faults.
#
# **Process failures.**
#
# - *Crash-stop*: a process halts and never comes back. Simple to reason about,
#   unrealistic for databases, which reboot. Some texts call this *fail-stop*; in the older
#   and stricter sense that this course uses, **fail-stop** means crash-stop *plus* reliable
#   detection: every other process eventually learns of the crash and never suspects a
#   process that is alive. The difference is not pedantry. Three-phase commit (Phase 2)
#   needs fail-stop in the strict sense, and ordinary networks only give crash-stop.
# - *Crash-recovery*: a process halts, loses everything in memory (volatile state, timers,
#   buffered messages) and later restarts, keeping only what it had written to **stable
#   storage**. This is the model for databases and the one two-phase commit is designed for.
# - *Byzantine* failures, where a process lies or behaves arbitrarily, are out of scope: the
#   transaction protocols in this course assume that processes follow the protocol or stop.
#
# **Network failures.** Messages can be lost, delayed for an unbounded time, duplicated, or
# delivered out of order. A **network partition** splits the processes into groups that can
# talk inside the group but not across it; from inside each group, the others look exactly
# like crashed processes. In an *asynchronous* system (no bound on message delay or
# processing time), a process waiting for a reply cannot tell whether the other side crashed,
# is slow, or is cut off. A **timeout** is therefore a guess, never a proof. Phase 2 shows
# what this fact costs and, just as important, what it does not explain. Two-phase commit
# can block even with a *perfect* failure detector: when the coordinator crashes after the
# participants voted yes, they may know for certain that it crashed, yet the decision it
# made (or did not make) lives only in its log, so nobody else can safely decide. What
# lying timeouts break is the cure: three-phase commit removes that blocking only if
# crashes are detected reliably, which needs a synchronous network.
#
# **Stable storage and the log.** Each site keeps a write-ahead log on storage that survives
# crashes. A **forced** log write (an fsync or equivalent) returns only when the record is
# durable; a **lazy** write sits in a buffer and may be lost in a crash. Forced writes are
# slow (they wait for the device), so protocols force only the records whose loss would break
# correctness, and the number of forced writes is one of the main costs we count. A rule of
# thumb you will meet again and again: *a process forces a record before it sends a message
# that depends on it*. If Bank B tells the coordinator "I promise I can commit", that promise
# must survive Bank B crashing a millisecond later.
#
# | failure | what survives | example in the transfer |
# |---|---|---|
# | crash of the client between steps | both banks' committed data | the 600 row above |
# | crash of a bank, then restart | its forced log records | a debit that was forced is redone on restart |
# | lost or delayed message | nothing is known about it | client cannot tell if the credit happened |
# | partition | each side keeps running | each bank thinks the other is down |

# %% [markdown]
# A lost message and a slow one look the same to the client. Below, bank B commits the
# credit but its reply is lost; the client times out, retries, and bank B, which keeps no
# record of which requests it has already served, applies the credit a second time.

# %%
retried = demo("lost_reply_retry")
print(retried.summary())
sequence_diagram(retried.trace, title="A lost reply and a retried credit: money created")

# %% [markdown]
# ### What a correct protocol must deliver
#
# Putting this together, a distributed transaction system must ensure, for every
# transaction and under the failure model above:
#
# 1. **Agreement**: no site commits while another aborts.
# 2. **Veto**: commit happens only if every site was willing.
# 3. **Durability of the decision**: once decided, the outcome survives crashes at every site.
# 4. **Isolation**: concurrent distributed transactions do not see or cause half-done states.
# 5. **Progress** where possible: if failures heal, every site eventually learns the outcome.
#
# Points 1, 2, 3 and 5, together with a non-triviality rule (in a run where nothing fails
# and everyone is willing, the outcome must be commit, so that "always abort" does not count
# as a solution; once anything fails, aborting is always allowed), are the *atomic
# commitment properties* that Bernstein, Hadzilacos and Goodman
# number AC1 to AC5 [Bernstein et al. 1987, ch. 7]; you will check them with the model
# checker in Phase 2. Point 4 is the subject of the next resource.

# %% [markdown]
# ### The exercise: catch a broken transfer
#
# The exercise below runs the naive transfer between a few small databases many times,
# injecting the faults of the table above at random transfers. Your job is not to fix the
# transfer yet; it is to write the **invariant check** that catches it when it breaks. Given
# the state of the banks and the list of transfers that were started, your function should
# report a violation when:
#
# - the total money across all accounts differs from the initial total (money destroyed or
#   created), or
# - some transfer is half-applied: its debit is present and its credit is not, or the other
#   way round, even if other errors happen to cancel it out in the total.
#
# The second check is stronger than the first. Two broken transfers, one that lost 100 and
# one that created 100, leave the total unchanged; only a per-transfer check sees them. That
# is a general lesson: an aggregate invariant is a useful alarm, but the real correctness
# condition is about each transaction being all-or-nothing.

# %% [markdown]
# #### Your task
#
# Write `audit(banks, transfers, expected_total)`, the invariant check. It receives:
#
# - `banks`: a mapping from bank name to that bank's state after the run, with
#   `.balances` (account name to balance) and `.ledger`, the entries the bank committed, in
#   order. Each entry has `.transfer` (the transfer id), `.account` and `.amount` (negative
#   for a debit, positive for a credit).
# - `transfers`: the transfers that were started, each with `.id`, `.source_bank`,
#   `.source_account`, `.target_bank`, `.target_account` and `.amount`.
# - `expected_total`: the total money across all banks before the run.
#
# Return a list of human-readable messages, one per violation, and an empty list when
# everything is consistent:
#
# 1. when the total across all banks differs from `expected_total`, a message that contains
#    the word **total** (say how much was created or destroyed);
# 2. for every transfer that was not applied exactly once at both banks (a debit without its
#    credit, a credit without its debit, or either one applied twice), a message that names
#    the transfer's **id**;
# 3. for every account with a balance below zero, a message that contains the word
#    **negative** and the account's name.
#
# Never name a transfer that was applied correctly: an alarm that cries wolf is ignored.
# Use only what the banks hold; the list of faults that were injected is not yours to see.

# %% dtcourse={"solution": "p1.transfer"}
def audit(banks, transfers, expected_total):
    """Every violation of the bank's invariants, as messages; empty when all is well."""
    ### BEGIN SOLUTION
    problems = []
    total = sum(sum(bank.balances.values()) for bank in banks.values())
    if total != expected_total:
        change = total - expected_total
        what = "created" if change > 0 else "destroyed"
        problems.append(f"total is {total}, expected {expected_total}: {abs(change)} {what}")
    for bank in banks.values():
        for account, balance in bank.balances.items():
            if balance < 0:
                problems.append(f"negative balance: {bank.name}/{account} holds {balance}")
    for transfer in transfers:
        debits = [
            entry
            for entry in banks[transfer.source_bank].ledger
            if entry.transfer == transfer.id and entry.amount < 0
        ]
        credits = [
            entry
            for entry in banks[transfer.target_bank].ledger
            if entry.transfer == transfer.id and entry.amount > 0
        ]
        if (len(debits), len(credits)) != (0, 0) and (len(debits), len(credits)) != (1, 1):
            problems.append(
                f"transfer {transfer.id} half-applied: {len(debits)} debit(s) at "
                f"{transfer.source_bank}, {len(credits)} credit(s) at {transfer.target_bank}"
            )
    return problems
    ### END SOLUTION

# %% [markdown]
# Try your audit on the runs above, then ask for feedback: `dtcourse.check` runs the
# visible checks, tells you what failed, and records a pass in your progress.

# %%
print(audit(lost.banks, lost.transfers, lost.expected_total))
print(audit(busy.banks, busy.transfers, busy.expected_total))
dtcourse.check("p1.transfer", audit)

# %% [markdown]
# The graded checks below (10 points) run the same kind of runs, and more that you do not
# see: other seeds, more banks and accounts, every fault, faults that cancel out in the
# total.

# %% dtcourse={"test": "p1.transfer", "points": 3}
from dtcourse.runtime.checks import check_part

check_part("p1.transfer", "clean", audit)
### BEGIN HIDDEN TESTS
from dtcourse_instructor.grader import grade_part

grade_part("p1.transfer", "clean", audit)
from dtcourse.lessons.naive_transfer import random_workload as _workload
from dtcourse.lessons.naive_transfer import run_transfers as _run

_runs = []
for _seed, _banks, _accounts, _count in ((101, 2, 2, 5), (102, 3, 7, 15), (103, 4, 9, 20)):
    _opening, _planned = _workload(_seed, banks=_banks, accounts=_accounts, transfers=_count)
    _runs.append(_run(_opening, _planned))
    _runs.append(_run(_opening, _planned, {_planned[-1].id: "crash_before_first"}))
    _runs.append(_run(_opening, _planned, {_planned[0].id: "crash_before_first"},
                      order="credit_first"))
_runs.append(_run({"bank-a": {"alice": 0}, "bank-b": {"bob": 0}}, []))
grade_part("p1.transfer", "clean", audit, runs=_runs)
### END HIDDEN TESTS

# %% dtcourse={"test": "p1.transfer", "points": 4}
check_part("p1.transfer", "lost_debit", audit)
### BEGIN HIDDEN TESTS
from dtcourse_instructor.grader import grade_part

grade_part("p1.transfer", "lost_debit", audit)
_runs = []
for _seed, _banks, _accounts, _count, _victims in (
    (201, 2, 4, 8, (0,)),
    (202, 3, 6, 12, (5, 9)),
    (203, 4, 8, 16, (15,)),
):
    _opening, _planned = _workload(_seed, banks=_banks, accounts=_accounts, transfers=_count)
    _faults = {_planned[i].id: "crash_between" for i in _victims if i < len(_planned)}
    _runs.append(_run(_opening, _planned, _faults))
grade_part("p1.transfer", "lost_debit", audit, runs=_runs)
### END HIDDEN TESTS

# %% dtcourse={"test": "p1.transfer", "points": 3}
check_part("p1.transfer", "faults", audit)
### BEGIN HIDDEN TESTS
from dtcourse_instructor.grader import grade_part

grade_part("p1.transfer", "faults", audit)
from dtcourse.lessons.naive_transfer import Transfer as _Transfer

_runs = []
_opening, _planned = _workload(301, banks=3, accounts=6, transfers=12)
_runs.append(_run(_opening, _planned, {_planned[2].id: "rejected_credit",
                                       _planned[7].id: "lost_reply_retry"}))
_runs.append(_run(_opening, _planned, {_planned[4].id: "crash_between",
                                       _planned[8].id: "crash_before_first"},
                  order="credit_first"))
_runs.append(_run(_opening, _planned, {_planned[1].id: "rejected_credit"},
                  order="credit_first"))
# two broken transfers that cancel out in the total: only a per-transfer check sees them
_runs.append(
    _run(
        {"bank-a": {"alice": 500}, "bank-b": {"bob": 200}},
        [
            _Transfer("t1", "bank-a", "alice", "bank-b", "bob", 100),
            _Transfer("t2", "bank-b", "bob", "bank-a", "alice", 100),
        ],
        {"t1": "crash_between", "t2": "lost_reply_retry"},
    )
)
# a retried credit on top of a refused one, with an overdraft downstream
_runs.append(
    _run(
        {"bank-a": {"alice": 50, "dave": 10}, "bank-b": {"bob": 0, "erin": 5}},
        [
            _Transfer("t1", "bank-a", "alice", "bank-b", "bob", 50),
            _Transfer("t2", "bank-b", "bob", "bank-a", "dave", 40),
            _Transfer("t3", "bank-b", "erin", "bank-a", "dave", 5),
        ],
        {"t1": "rejected_credit", "t3": "lost_reply_retry"},
    )
)
grade_part("p1.transfer", "faults", audit, runs=_runs)
### END HIDDEN TESTS

# %% [markdown]
# ### Sources
#
# - Morris, R. *MIT 6.824 Distributed Systems, Lecture 12: Distributed Transactions* (notes), 2020. https://pdos.csail.mit.edu/6.824/notes/l-2pc.txt
# - Kleppmann, M. *Designing Data-Intensive Applications*, O'Reilly, 2017; ch. 7 "Transactions" and ch. 9 "Consistency and Consensus". https://dataintensive.net/
# - Kleppmann, M. *Distributed Systems* lecture notes, University of Cambridge, 2021/22, §7.1 "Two-phase commit". https://www.cl.cam.ac.uk/teaching/2122/ConcDisSys/dist-sys-notes.pdf
# - Gray, J. "The Transaction Concept: Virtues and Limitations", VLDB, 1981. https://jimgray.azurewebsites.net/papers/theTransactionConcept.pdf
# - Gray, J. "Notes on Data Base Operating Systems", in *Operating Systems: An Advanced Course*, LNCS 60, Springer, 1978. https://doi.org/10.1007/3-540-08755-9_9
# - Bernstein, P. A., Hadzilacos, V., Goodman, N. *Concurrency Control and Recovery in Database Systems*, Addison-Wesley, 1987, ch. 7 "Distributed Recovery". https://www.microsoft.com/en-us/research/people/philbe/book/
# - Corbett, J. C. et al. "Spanner: Google's Globally-Distributed Database", OSDI, 2012. https://research.google/pubs/spanner-googles-globally-distributed-database-2/
# - X/Open Company Ltd. *Distributed Transaction Processing: The XA Specification*, 1991. https://pubs.opengroup.org/onlinepubs/009680699/toc.pdf
# - PostgreSQL Global Development Group. "PREPARE TRANSACTION", PostgreSQL documentation, n.d. https://www.postgresql.org/docs/current/sql-prepare-transaction.html

# %% [markdown]
# <!-- resource:p1.acid -->
# ## 2. ACID in Distributed Systems
#
# *Article · reading 35 minutes + exercises about 45 minutes · Focus: How ACID properties apply to distributed transactions*
# <!-- /resource -->

# %% [markdown]
# "ACID" is the promise every database textbook makes about transactions. This resource
# takes each of the four letters and asks what it means when a transaction spans several
# sites, what extra machinery each one needs, and where the usual single-site intuitions fail.
# The centrepiece is isolation: you will learn to draw the precedence graph of a multi-site
# history, decide whether it is serializable, and name the anomaly when it is not.

# %% [markdown]
# ### Where ACID comes from
#
# Jim Gray's 1981 paper "The Transaction Concept: Virtues and Limitations" described a
# transaction as a transformation of state with three properties: *atomicity* (all or
# nothing), *consistency* (it obeys the legal protocols, i.e. preserves the application's
# invariants) and *durability* (once committed, its effects survive failures) [Gray 1981].
# Isolation from concurrent transactions was part of the picture through Gray's work on
# locking. Two years later, Theo Härder and Andreas Reuter, surveying how databases recover
# from failures, packed the four properties into the acronym **ACID**: Atomicity,
# Consistency, Isolation, Durability [Härder & Reuter 1983].
#
# It helps to notice that the four letters are not the same kind of thing. Atomicity,
# isolation and durability are guarantees the *system* gives. Consistency is mostly the
# *application's* job: the database cannot know that "the total of all balances is
# constant" unless you tell it, and a transaction that transfers money to the wrong account
# is perfectly atomic, isolated and durable [Kleppmann 2017, ch. 7]. The system's part is to
# make sure that if each transaction preserves the invariants when run alone, the
# invariants still hold with crashes and concurrency.
#
# | letter | single site | across sites | machinery |
# |---|---|---|---|
# | A | undo on abort, redo on commit, from one log | every site commits or every site aborts | an atomic commitment protocol (2PC and relatives) |
# | C | constraints checked by one engine | invariants that span sites cannot be checked by any one of them | application checks plus A and I |
# | I | the engine's locks or multiversioning | the *combined* history must be serializable | a global rule: e.g. strict 2PL everywhere plus atomic commit |
# | D | a forced commit record | a forced record at every site, and a forced decision | forced log writes in the commit protocol |

# %% [markdown]
# ### A: atomicity becomes atomic commitment
#
# On one site, atomicity is a logging problem: write undo and redo information ahead of the
# data, force a commit record, and recovery can always finish or erase a transaction. Across
# sites, each site can still do that for its own branch, but nothing makes the sites *choose
# the same way*. That extra agreement is **atomic commitment**, and it is the subject of
# Phase 2. Notice what it does not cover: atomic commitment makes the outcome
# all-or-nothing; it says nothing about what concurrent transactions may observe in between.

# %% [markdown]
# ### C: invariants that no site can see
#
# "Total money is conserved" involves Alice's row at Bank A and Bob's row at Bank B. Bank A
# can check `balance >= 0` for Alice; no single bank can check a constraint over both.
# Cross-site invariants are maintained only *indirectly*: if every transaction preserves
# them when run alone (the application's job), atomicity guarantees that no transaction is
# half-applied, and isolation guarantees that concurrent transactions behave as if run one
# at a time, then the invariant holds. Lose either A or I and the invariant can break even
# though every transaction was written correctly. That is why the rest of this resource is
# about isolation.

# %% [markdown]
# ### I: serializability across sites
#
# #### Histories and conflicts
#
# We describe an execution as a **history**: the sequence of operations the sites performed.
# `r1[x]` means transaction T1 reads item x, `w1[x]` means it writes x, `c1` and `a1` mean
# it commits or aborts. When the site matters we write `@A`. Two operations **conflict** if
# they belong to different transactions, touch the same item, and at least one is a write.
# The order of non-conflicting operations never matters to the outcome; the order of
# conflicting ones does.
#
# A history is **serial** if transactions run one after another with no interleaving. It is
# **conflict-serializable** if it is equivalent to some serial history, meaning it orders
# every pair of conflicting operations the same way that serial history does. Serializability
# is the gold standard of isolation: whatever the interleaving, the result is one you could
# have got by running the transactions one at a time.

# %% [markdown]
# #### The precedence graph
#
# The tool for deciding conflict-serializability is the **precedence graph** (also called
# the serialization or conflict graph) [Bernstein et al. 1987]:
#
# - one node per committed transaction;
# - an edge Ti → Tj whenever an operation of Ti conflicts with, and comes before, an
#   operation of Tj.
#
# The **Serializability Theorem** states: a history is conflict-serializable **if and only
# if its precedence graph is acyclic**. When it is acyclic, any topological order of the
# graph is an equivalent serial order. When there is a cycle, no serial order can respect
# every conflict, so the history is not serializable.
#
# Worked example on one site:
#
# ```
# H1 = r1[x] w2[x] r2[y] w1[y] c1 c2
# ```
#
# `r1[x]` before `w2[x]` gives T1 → T2. `r2[y]` before `w1[y]` gives T2 → T1. The graph has
# the cycle T1 → T2 → T1, so H1 is not serializable. Change one step, `H1' = r1[x] w2[x] w1[y]
# r2[y] c1 c2`, and both edges point T1 → T2: acyclic, equivalent to the serial order T1, T2.

# %% [markdown]
# The same example, computed. `parse_history` reads the notation; `conflicts` lists each
# pair of conflicting operations in history order, and each gives one edge. The picture
# labels each arrow with the item (and site) whose conflict put it there; a cycle is red.

# %%
from dtcourse.lessons.histories import conflicts
from dtcourse.pictures.precedence import precedence_figure

h1 = "r1[x] w2[x] r2[y] w1[y] c1 c2"
for conflict in conflicts(h1):
    print(f"{conflict}  gives  {conflict.edge[0]} → {conflict.edge[1]}")
# the edges and the cycle worked out above; the picture draws what it is given
precedence_figure(h1, {("T1", "T2"), ("T2", "T1")}, cycle=("T1", "T2"))

# %%
precedence_figure(
    "r1[x] w2[x] w1[y] r2[y] c1 c2", {("T1", "T2")}, title="H1': acyclic, serial order T1, T2"
)

# %% [markdown]
# #### Local serializability is not enough
#
# With several sites, each item lives at one site (we ignore replication here), so conflicts
# only arise between operations at the same site. The **global precedence graph** is the
# union of the sites' local graphs, and the global history is serializable iff that union is
# acyclic. The important consequence: **every site can be serializable while the whole is
# not**. Here is the transfer from Phase 1 next to an auditor:
#
# - T1 transfers 100: `w1[x]` at Bank A (Alice's balance x) and `w1[y]` at Bank B (Bob's
#   balance y).
# - T2 is an audit that reads x and y and adds them up.
#
# ```
# Site A:   w1[x]  r2[x]          (T2 reads Alice after the debit)
# Site B:   r2[y]  w1[y]          (T2 reads Bob before the credit)
# ```
#
# | site | local history | local edges | locally serializable? |
# |---|---|---|---|
# | A | w1[x] r2[x] | T1 → T2 | yes (serial: T1, T2) |
# | B | r2[y] w1[y] | T2 → T1 | yes (serial: T2, T1) |
# | global | union | T1 → T2, T2 → T1 | **no**: cycle |
#
# Each bank, looking only at its own log, sees a perfectly serial execution, but the two
# banks serialized the transactions in *opposite* orders. The auditor's sum is 100 short:
# money has vanished from its point of view, even though no transaction was half-applied.
# Atomic commitment alone would not prevent this.

# %% [markdown]
# Here are the auditor's history and its graphs: each site's own graph on the left (what
# that bank can see), and their union on the right.

# %%
auditor = "w1[x]@A r2[x]@A r2[y]@B w1[y]@B c1 c2"
precedence_figure(
    auditor,
    {("T1", "T2"), ("T2", "T1")},
    site_edges={"A": {("T1", "T2")}, "B": {("T2", "T1")}},
    cycle=("T1", "T2"),
)

# %% [markdown]
# What does prevent it? The standard answer is **strict two-phase locking (strict 2PL) at
# every site, combined with an atomic commitment protocol** that releases locks only after
# the global decision. Under strict 2PL, T2 cannot read x at A until T1 has committed there,
# and T1 cannot commit anywhere until it holds all its locks everywhere (it has prepared at
# every site). The sites are then forced to serialize conflicting transactions in one
# consistent order [Bernstein et al. 1987; Morris 2020]. Other systems use globally
# meaningful timestamps instead (Spanner, Phase 3). The price of the locking recipe is that
# locks are held across the network round trips of the commit protocol, which is the root of
# most performance complaints about distributed transactions.

# %% [markdown]
# #### Four anomalies, each in a tiny history
#
# When a system offers less than serializability, particular **anomalies** become possible.
# Four are worth knowing by heart; each has an abort or a cycle at its core. The names and
# shapes are those of Berenson et al. [Berenson et al. 1995]; the next section gives each
# its name in a more precise vocabulary.
#
# **Dirty read.** A transaction reads a value written by a transaction that has not committed
# and then aborts.
#
# ```
# w1[x=50] r2[x=50] a1 c2
# ```
#
# T2 committed having acted on a value that never existed. The course counts a dirty read
# only when the reader **commits**: in `w1[x] r2[x] a1 a2` nothing T2 did survives, so no
# harm is visible in the finished history, and Adya's definition (below) does not count it
# either. Berenson et al.'s *phenomenon* P1 is broader on purpose: it forbids the pattern
# `w1[x] ... r2[x]` before T1 ends, whatever happens next, because a locking system must
# prevent it without knowing the future. A phenomenon is what an isolation level forbids; an
# anomaly is what went wrong in a finished history.
#
# Across sites, beware of calling the auditor of the previous section a dirty read. T2 reads
# x at bank A after T1 wrote it, but T1 goes on to commit everywhere, so T2 never sees a
# value that did not exist: it sees T1's debit and not T1's credit. That is **read skew**,
# below. A truly distributed dirty read needs a site that exposes a prepared branch's write
# and a global outcome of abort.
#
# **Lost update.** A transaction reads an item, another transaction writes it, and the first
# then writes it from the value it had read, wiping out the second one's update.
#
# ```
# r1[x=10] r2[x=10] w1[x=11] c1 w2[x=11] c2
# ```
#
# Two increments, final value 11 instead of 12. Edges: `r1[x]` before `w2[x]` gives T1 → T2;
# `r2[x]` before `w1[x]` gives T2 → T1. Cycle. Berenson et al. define the anomaly (their P4)
# by the shape `r1[x] ... w2[x] ... w1[x] ... c1`, and the course follows them: the
# transaction whose update is lost need not have read anything. In `r1[x] w2[x] w1[x] c1 c2`
# T2 writes x blindly (a clerk sets a new price), and T1 overwrites it with a value computed
# from the old price. T2's update is just as lost, and the graph has the same cycle:
# `r1[x]` before `w2[x]` gives T1 → T2, `w2[x]` before `w1[x]` gives T2 → T1.
#
# **Read skew.** A transaction reads one item before another transaction writes it and a
# second item after that transaction wrote it, so it sees half of the other's effects. This
# is the auditor: `w1[x]@A r2[x]@A r2[y]@B w1[y]@B c1 c2` sees Alice debited and Bob not yet
# credited. Berenson et al. call it A5A.
#
# **Write skew.** Two transactions read an overlapping set of items, check a constraint, and
# then write *different* items, so neither overwrites the other but together they break the
# constraint (Berenson et al.'s A5B). The classic example: at least one doctor must be on
# call; x = "Alice on call", y = "Bob on call", both true.
#
# ```
# r1[x] r1[y] r2[x] r2[y] w1[x=off] w2[y=off] c1 c2
# ```
#
# Each transaction saw two doctors on call and took one off; now nobody is on call. Edges:
# `r2[x]` before `w1[x]` gives T2 → T1; `r1[y]` before `w2[y]` gives T1 → T2. Cycle. Put x
# at site A and y at site B and you get the same picture as the auditor: each site has a
# single edge, the union has a cycle.

# %% [markdown]
# The lost update with a blind writer, drawn: T2 never reads x, and the cycle is there all
# the same.

# %%
from dtcourse.pictures.precedence import precedence_figure

# r1[x] before w2[x] gives T1 -> T2; w2[x] before w1[x] gives T2 -> T1.
precedence_figure("r1[x]@A w2[x]@A w1[x]@A c1 c2", {("T1", "T2"), ("T2", "T1")}, cycle=("T1", "T2"))

# %% [markdown]
# #### The same anomalies in Adya's vocabulary
#
# English descriptions of anomalies are easy to misread, which is exactly what Berenson et
# al. criticised in the SQL standard. Atul Adya's doctoral thesis replaced them with cycles
# in a graph, and the Jepsen consistency map (below) uses his names throughout [Jepsen
# n.d.]. The graph has one node per transaction and three kinds of edge from T1 to T2:
# **ww** (T2 overwrites a value T1 wrote), **wr** (T2 reads a value T1 wrote) and **rw**, an
# *anti-dependency* (T2 overwrites a value T1 read). One line each:
#
# - **G0, write cycle**: a cycle of ww edges only, e.g. `w1[x] w2[x] w2[y] w1[y] c1 c2`
#   (two transactions' writes interleaved; Berenson et al.'s dirty write, P0).
# - **G1a, aborted read**: a committed transaction reads a value written by a transaction
#   that aborted. This is the dirty read of this course.
# - **G1b, intermediate read**: a committed transaction reads a value that its writer later
#   overwrote itself, so not the writer's final value.
# - **G1c, circular information flow**: a cycle of ww and wr edges only; each transaction
#   sees, or overwrites, the other's effects.
# - **G-single**: a cycle with exactly one rw edge. Read skew (the auditor: T1 wr T2 on x,
#   T2 rw T1 on y) and lost update (T1 rw T2 and T2 ww T1 on the same x) are both G-single.
# - **G2-item**: a cycle with one or more rw edges between items. Write skew has two
#   (T1 rw T2 on y, T2 rw T1 on x) and no ww or wr edge, so it is G2-item but not G-single.
#
# A G-single cycle is also a G2-item cycle; one names the most specific class. **G2** is
# G2-item extended with anti-dependencies on *predicates* (a transaction inserts a row that
# another's query would have matched): the phantom and its write skew. The exercise's
# names sit on these classes: "dirty read" is G1a; "lost update" and "read skew" are
# G-single shapes; "write skew" is G2-item but not G-single; "other" covers G0, G1c and
# longer cycles.
#
# Which isolation level prevents what? The table follows Berenson et al.'s Table 4
# [Berenson et al. 1995], with the predicate form of write skew added as its own row:
#
# | anomaly | Adya | read committed | repeatable read (locking) | snapshot isolation | serializable |
# |---|---|---|---|---|---|
# | dirty read | G1a | prevented | prevented | prevented | prevented |
# | lost update | G-single | possible | prevented | prevented (first committer wins) | prevented |
# | read skew | G-single | possible | prevented | prevented (one snapshot) | prevented |
# | write skew on items | G2-item | possible | **prevented** | **possible** | prevented |
# | write skew through a predicate | G2 | possible | possible | possible | prevented |
#
# Locking repeatable read prevents item write skew because each transaction keeps its read
# locks until it commits: in the doctors' history T1's write of x waits for T2's read lock
# and T2's write of y waits for T1's, a deadlock that aborts one of them. It does not lock
# *predicates*, so a write skew through a query ("count the doctors on call") slips
# through, and only serializable prevents it. Snapshot isolation checks only write-write
# conflicts, and the doctors write different items.
#
# Watch the names. PostgreSQL and MySQL's InnoDB call their snapshot-based level
# `REPEATABLE READ` [Kleppmann 2017, ch. 7]. For write skew it behaves like the snapshot
# isolation column, not like the locking column: both allow the doctors' history. (They
# differ on lost update: PostgreSQL's level aborts the second writer, InnoDB's does not
# detect the lost update [Kleppmann 2017, ch. 7].) The level's name tells you little; the
# mechanism tells you what it prevents.

# %% [markdown]
# Your turn to experiment: write a history in the notation (tag each read and write with
# its site) and draw it. Try the doctors' write skew with x at site A and y at site B, then
# reorder operations until the cycle disappears.

# %%
mine = "r1[x]@A r1[y]@B r2[x]@A r2[y]@B w1[x=off]@A w2[y=off]@B c1 c2"
found = conflicts(mine)
for conflict in found:
    print(f"{conflict}  gives  {conflict.edge[0]} → {conflict.edge[1]}")
# one arrow per conflict (an aborted transaction's would not count): find the cycle yourself
precedence_figure(mine, {conflict.edge for conflict in found})

# %% [markdown]
# #### Isolation levels and why their definitions were criticised
#
# The SQL standard defines four isolation levels (read uncommitted, read committed,
# repeatable read, serializable) by which of three *phenomena* they forbid: dirty read,
# non-repeatable (fuzzy) read, and phantom. Berenson, Bernstein, Gray and colleagues showed
# in 1995 that these definitions do not characterise the levels real systems implement
# [Berenson et al. 1995]. The phenomena are stated in ambiguous English; under a strict
# (narrow) reading, a history can avoid all three and still not be serializable, so the
# broad reading is needed; a *dirty write* phenomenon (P0) is missing altogether; and popular
# levels implemented by real systems do not fit the scheme. Their best-known contribution is
# the analysis of **snapshot isolation**: each transaction reads from a snapshot taken at its
# start and commits only if no concurrent transaction wrote the same items
# ("first committer wins"). Snapshot isolation precludes the three ANSI anomalies in their
# strict reading, and yet it is *not* serializable, because it allows write skew. The paper
# also named lost update and read skew as anomalies that distinguish the levels, which is
# where the table above comes from.
#
# #### The Jepsen consistency map
#
# The Jepsen project maintains a map of consistency models, from strict serializable at the
# top through serializable, snapshot isolation, repeatable read and cursor stability down to
# read committed and read uncommitted, with arrows showing which models imply which
# [Jepsen n.d.]. The map also marks which models can be provided by a system that stays
# available when the network partitions: serializable, snapshot isolation and repeatable
# read cannot (some requests must wait or fail during a partition), while read committed can.
# That single colour coding is the consistency-versus-availability trade-off you will meet
# again in Phase 3. Jepsen's analyses are also a sobering reminder that claims need testing:
# its PostgreSQL 12.3 analysis found that the serializable level admitted G2-item cycles
# (write-skew-shaped anomalies that serializable must prevent) because of a bug, fixed after
# the report [Kingsbury 2020].

# %% [markdown]
# ### D: durability means forced writes everywhere
#
# On one site, durability is a forced commit record. Across sites it becomes a chain of
# forced writes, each protecting a promise made to another site: a participant forces a
# *prepared* record before it promises it can commit; the coordinator forces the *decision*
# before it tells anyone; participants force the outcome before acknowledging it. Phase 2
# explains why each of these must be forced and not merely written, and Phase 3 counts them,
# because they are a large part of the cost of a distributed commit.

# %% [markdown]
# ### The exercise: precedence graphs of multi-site histories
#
# In the exercise below you are given histories spread over several sites, written in the
# notation above. For each history you will:
#
# 1. build the precedence graph: one node per committed transaction, an edge for each
#    ordered pair of conflicting operations at the same site (aborted transactions
#    contribute no edges);
# 2. decide conflict-serializability by looking for a cycle, and if the graph is acyclic,
#    give an equivalent serial order (a topological order);
# 3. name the anomaly by the rules below.
#
# Work a few by hand first. Check that every edge comes from a real conflict (different
# transactions, same item, at least one write) and that you read the direction from the
# order of the operations, not the order of the transaction numbers.

# %% [markdown]
# #### Your task
#
# Write `analyse(history)`. The history is a tuple of operations in the order they happened,
# as `parse_history` returns them; each operation has `.action` (`"r"`, `"w"`, `"c"` or
# `"a"`), `.txn` (`"T1"`), and for reads and writes `.item` (`"x"`) and `.site` (`"A"`).
# A transaction is committed unless the history aborts it (a missing commit counts as one at
# the end). Return a `Verdict` with:
#
# - `sites`: each site's own precedence graph, as a mapping from the site to its set of
#   edges, e.g. `{"A": {("T1", "T2")}, "B": {("T2", "T1")}}`; write this first, as
#   `site_edges(history)` (step 1 below);
# - `edges`: the set of edges `(Ti, Tj)` of the global precedence graph, the union of the
#   sites' edges, e.g. `{("T1", "T2")}`; one node per committed transaction, aborted
#   transactions contribute no edges;
# - `serializable`: `True` when the graph has no cycle;
# - `order`: when serializable, an equivalent serial order, as a tuple of every committed
#   transaction (`("T2", "T1")`); otherwise `None`;
# - `anomaly`: the first of these rules that applies (Berenson et al. 1995 name all four;
#   the conventions are the ones explained with the anomalies above):
#   1. `"dirty read"`: a **committed** transaction reads a value written by a transaction
#      that aborts after the read (the value it read never existed; a reader that aborts
#      too is not counted, as in Adya's G1a);
#   2. `None`: the history is serializable;
#   3. `"lost update"`: a committed transaction reads an item, a second committed
#      transaction then writes that item, and the first one writes it after that
#      (`r1[x] ... w2[x] ... w1[x]`, Berenson et al.'s P4: the second writer may write
#      blindly, without reading);
#   4. `"write skew"`: two committed transactions each read an item that the other one
#      writes later, and the two items differ;
#   5. `"read skew"`: a committed transaction reads one item before a second transaction
#      writes it, and another item after that transaction wrote it (the auditor);
#   6. `"other"`: a cycle of another shape (longer cycles, cycles made only of writes).
#
# "Before" and "after" are about positions in the history. For rule 3, a write of the
# second transaction must fall between the first one's first read of the item and its last
# write of it; for rules 4 and 5 compare a transaction's first read of an item with the
# other's last write (or its first write with the other's last read).

# %% dtcourse={"solution": "p1.serializability"}
# Step 1: each site's own precedence graph, the part of the picture one site can see.
# `conflicts(history)` lists every pair of conflicting operations, aborted transactions
# included; keep the ones that give an edge, grouped by their site.
from dtcourse.lessons.histories import Verdict, conflicts, parse_history


def site_edges(history):
    """Each site's precedence-graph edges, e.g. {"A": {("T1", "T2")}, "B": {("T2", "T1")}}."""
    ### BEGIN SOLUTION
    ops = list(history)
    gone = {op.txn for op in ops if op.action == "a"}
    edges = {}
    for n, first in enumerate(ops):
        for second in ops[n + 1 :]:
            if (
                first.action in ("r", "w")
                and second.action in ("r", "w")
                and first.txn != second.txn
                and not {first.txn, second.txn} & gone
                and (first.item, first.site) == (second.item, second.site)
                and "w" in (first.action, second.action)
            ):
                edges.setdefault(first.site, set()).add((first.txn, second.txn))
    return edges
    ### END SOLUTION

# %%
# The auditor's two sites as your function sees them; the graded cell below checks step 1
# on the reading's histories (and, when graded, on histories you do not see).
print(site_edges(parse_history("w1[x]@A r2[x]@A r2[y]@B w1[y]@B c1 c2")))

# %% dtcourse={"test": "p1.serializability", "points": 2}
from dtcourse.runtime.checks import check_part

check_part("p1.serializability", "sites", site_edges)
### BEGIN HIDDEN TESTS
from dtcourse_instructor.grader import grade_part

grade_part("p1.serializability", "sites", site_edges)
_histories = (
    "r1[x]@A r2[y]@B w1[y]@B w2[x]@A c1 c2",
    "r1[x]@A w2[x]@A w3[x]@A a2 r1[y]@B w3[y]@B c1 c3",
    "w3[z]@B r1[z]@B w1[x]@A r2[x]@A w2[y]@A r3[y]@A c1 c2 c3",
    "r1[x]@A w2[x]@B r2[x]@B w1[x]@A c1 c2",
    "r1[x]@A r2[x]@A r3[x]@A c1 c2 c3",
)
grade_part("p1.serializability", "sites", site_edges, histories=_histories)
### END HIDDEN TESTS

# %% dtcourse={"solution": "p1.serializability"}
# Step 2: the whole verdict. Use your site_edges for `sites`; the global edges are their union.
def analyse(history):
    """The precedence graph, serializability, a serial order and the anomaly of a history."""
    ### BEGIN SOLUTION
    ops = list(history)
    abort_at = {op.txn: i for i, op in enumerate(ops) if op.action == "a"}
    committed = [t for t in dict.fromkeys(op.txn for op in ops) if t not in abort_at]
    live = [(i, op) for i, op in enumerate(ops) if op.txn in committed]
    accesses = [(i, op) for i, op in live if op.action in ("r", "w")]

    sites = site_edges(history)
    edges = set().union(*sites.values())

    incoming = {t: 0 for t in committed}
    for _, target in edges:
        incoming[target] += 1
    ready = [t for t in committed if incoming[t] == 0]
    order = []
    while ready:
        node = ready.pop(0)
        order.append(node)
        for source, target in sorted(edges):
            if source == node:
                incoming[target] -= 1
                if incoming[target] == 0:
                    ready.append(target)
    serializable = len(order) == len(committed)

    def positions(action, txn, key):
        return [i for i, op in live if (op.action, op.txn, (op.item, op.site)) == (action, txn, key)]

    def read_then_write(reader, writer, key):
        reads, writes = positions("r", reader, key), positions("w", writer, key)
        return bool(reads and writes) and reads[0] < writes[-1]

    def write_then_read(writer, reader, key):
        writes, reads = positions("w", writer, key), positions("r", reader, key)
        return bool(reads and writes) and writes[0] < reads[-1]

    def lost_update(first, second, key):
        reads, rewrites = positions("r", first, key), positions("w", first, key)
        return bool(reads and rewrites) and any(
            reads[0] < i < rewrites[-1] for i in positions("w", second, key)
        )

    def name_anomaly():
        for i, op in enumerate(ops):
            if op.action != "r" or op.txn in abort_at:
                continue
            writes = [w for w in ops[:i] if w.action == "w" and (w.item, w.site) == (op.item, op.site)]
            if writes and writes[-1].txn != op.txn and abort_at.get(writes[-1].txn, -1) > i:
                return "dirty read"
        if serializable:
            return None
        keys = list(dict.fromkeys((op.item, op.site) for _, op in accesses))
        pairs = [(a, b) for a in committed for b in committed if a != b]
        if any(lost_update(a, b, k) for a, b in pairs for k in keys):
            return "lost update"
        for a, b in pairs:
            for x in keys:
                for y in keys:
                    if x != y and read_then_write(a, b, x) and read_then_write(b, a, y):
                        return "write skew"
        for writer, reader in pairs:
            for x in keys:
                for y in keys:
                    if x != y and write_then_read(writer, reader, x) and read_then_write(
                        reader, writer, y
                    ):
                        return "read skew"
        return "other"

    return Verdict(
        sites=sites,
        edges=frozenset(edges),
        serializable=serializable,
        order=tuple(order) if serializable else None,
        anomaly=name_anomaly(),
    )
    ### END SOLUTION

# %% [markdown]
# Work through the reading's histories with your function, then ask for feedback.

# %%
from dtcourse.runtime.checks.p1_serializability import visible_histories

for text in visible_histories():
    print(text, "->", analyse(parse_history(text)))
dtcourse.check("p1.serializability", analyse)

# %% [markdown]
# The graded checks (10 points): each site's graph (step 1, above), then the global edges,
# the verdict and serial order, and the anomaly, each on the reading's histories and on
# histories you do not see.

# %% dtcourse={"test": "p1.serializability", "points": 2}
check_part("p1.serializability", "edges", analyse)
### BEGIN HIDDEN TESTS
from dtcourse_instructor.grader import grade_part

grade_part("p1.serializability", "edges", analyse)
_histories = (
    "r1[x]@A r2[y]@B w1[y]@B w2[x]@A c1 c2",
    "r1[x]@A w1[x]@A r2[x]@A r3[y]@B w2[y]@B c1 c2 c3",
    "r1[x]@A w2[x]@A w3[x]@A a2 r1[y]@B w3[y]@B c1 c3",
    "w3[z]@B r1[z]@B w1[x]@A r2[x]@A w2[y]@A r3[y]@A c1 c2 c3",
    "r1[x]@A w2[x]@B r2[x]@B w1[x]@A c1 c2",
    "w1[x]@A w1[y]@B r2[x]@A r2[y]@B c1 c2",
    "r1[x]@A r2[x]@A r3[x]@A c1 c2 c3",
)
grade_part("p1.serializability", "edges", analyse, histories=_histories)
### END HIDDEN TESTS

# %% dtcourse={"test": "p1.serializability", "points": 3}
check_part("p1.serializability", "verdict", analyse)
### BEGIN HIDDEN TESTS
from dtcourse_instructor.grader import grade_part

grade_part("p1.serializability", "verdict", analyse)
_histories = (
    "r1[x]@A w1[x]@A r2[x]@A r3[y]@B w2[y]@B c1 c2 c3",
    "r2[y]@B w1[x]@A w1[y]@B c1 r2[x]@A c2",
    "w3[z]@B r1[z]@B w1[x]@A r2[x]@A w2[y]@A r3[y]@A c1 c2 c3",
    "r4[q]@C w3[q]@C r3[x]@A w2[x]@A r2[y]@B w1[y]@B c1 c2 c3 c4",
    "r1[x]@A w2[x]@A w3[x]@A a2 r1[y]@B w3[y]@B c1 c3",
    "r1[x]@A r2[x]@A r3[x]@A c1 c2 c3",
    "w1[x]@B r2[x]@B w2[y]@A a1 a2",
)
grade_part("p1.serializability", "verdict", analyse, histories=_histories)
### END HIDDEN TESTS

# %% dtcourse={"test": "p1.serializability", "points": 3}
check_part("p1.serializability", "anomaly", analyse)
### BEGIN HIDDEN TESTS
from dtcourse_instructor.grader import grade_part

grade_part("p1.serializability", "anomaly", analyse)
_histories = (
    "r1[x]@A r2[y]@B w1[y]@B w2[x]@A c1 c2",
    "r1[x]@A r2[x]@A w2[x]@A w1[x]@A c1 c2",
    "r2[y]@B w1[x]@A w1[y]@B c1 r2[x]@A c2",
    "w1[x]@A r2[x]@A w2[y]@B a1 c2",
    "w1[x]@A w1[y]@B r2[x]@A r2[y]@B c1 c2",
    "w3[z]@B r1[z]@B w1[x]@A r2[x]@A w2[y]@A r3[y]@A c1 c2 c3",
    "w1[x]@A a1 r2[x]@A c2",
    "r1[y]@B r2[x]@A w2[y]@B w1[y]@B c2 c1",
    "w1[x]@B r2[x]@B w2[y]@A a1 a2",
    "w1[x]@A r2[x]@A r3[x]@A a2 a1 c3",
)
grade_part("p1.serializability", "anomaly", analyse, histories=_histories)
### END HIDDEN TESTS

# %% [markdown]
# ### Sources
#
# - Gray, J. "The Transaction Concept: Virtues and Limitations", VLDB, 1981. https://jimgray.azurewebsites.net/papers/theTransactionConcept.pdf
# - Härder, T., Reuter, A. "Principles of Transaction-Oriented Database Recovery", *ACM Computing Surveys* 15(4), 1983. https://research.ibm.com/publications/principles-of-transaction-oriented-database-recovery
# - Berenson, H., Bernstein, P., Gray, J., et al. "A Critique of ANSI SQL Isolation Levels", SIGMOD, 1995. https://www.microsoft.com/en-us/research/wp-content/uploads/2016/02/tr-95-51.pdf
# - Bernstein, P. A., Hadzilacos, V., Goodman, N. *Concurrency Control and Recovery in Database Systems*, Addison-Wesley, 1987. https://www.microsoft.com/en-us/research/people/philbe/book/
# - Kleppmann, M. *Designing Data-Intensive Applications*, O'Reilly, 2017; ch. 7 "Transactions". https://dataintensive.net/
# - Jepsen. "Consistency Models" (reference map), n.d. https://jepsen.io/consistency
# - Kingsbury, K. "Jepsen: PostgreSQL 12.3", 2020. http://jepsen.io/analyses/postgresql-12.3
# - Morris, R. *MIT 6.824 Distributed Systems, Lecture 12: Distributed Transactions* (notes), 2020. https://pdos.csail.mit.edu/6.824/notes/l-2pc.txt

# %% [markdown]
# ## Completion checklist
#
# The course's checklist, kept in step with your progress: a phase is complete when its
# readings are marked as read and its exercises pass `dtcourse.check`.

# %%
from dtcourse.runtime.widgets import checklist

checklist()
