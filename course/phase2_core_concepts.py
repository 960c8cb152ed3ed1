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
# # Phase 2: Core Concepts
#
# This phase is about the protocols that make a transaction atomic across sites. You will
# read how two-phase commit works and why it can block, how three-phase commit removes the
# blocking under some assumptions and what happens when those assumptions fail, and what
# goes wrong with distributed transactions in real systems. Along the way you will write a
# 2PC participant and coordinator as actors and let the model checker and seeded random runs
# judge them, find the blocking scenario yourself, write the termination rule of 3PC, write
# the recovery step of a coordinator that drives real SQLite databases, and detect a
# deadlock that no single site can see.
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
seed = 2026  # seed of the random runs in the hands-on cells
ci = False  # True in continuous integration: smaller runs where it matters
max_states = 20_000  # bound on the model-checker runs of the hands-on cells
chaos_runs = 300  # how many seeded random runs the chaos cells make

# %% dtcourse={"locked": true}
setup("0.2.0", progress_store)

# %% [markdown]
# ## Your reading list
#
# The readings of this phase, in order, with their exercises. When you have worked through
# a reading, mark it as read in the widget below; the checklist at the end of the notebook
# follows your progress.
#
# <!-- resources:phase2 -->
# **Phase 2: Core Concepts**: 3 readings, 60 points of exercises; reading 105 minutes + exercises about 160 minutes.
#
# 1. **Two-Phase Commit** (Article, reading 40 minutes + exercises about 70 minutes). Focus: Understanding the two-phase commit protocol.
#    - Exercise `p2.twopc.participant`: 2PC participant (10 points, about 25 minutes)
#    - Exercise `p2.twopc.coordinator`: 2PC coordinator (15 points, about 30 minutes)
#    - Exercise `p2.blocking`: Find the blocking scenario (5 points, about 15 minutes)
# 2. **Three-Phase Commit** (Article, reading 35 minutes + exercises about 40 minutes). Focus: Understanding the three-phase commit protocol.
#    - Exercise `p2.threepc`: 3PC with termination (15 points, about 40 minutes)
# 3. **Distributed Transaction Challenges** (Article, reading 30 minutes + exercises about 50 minutes). Focus: Common challenges in distributed transactions.
#    - Exercise `p2.recovery`: Coordinator recovery on a real database (10 points, about 30 minutes)
#    - Exercise `p2.deadlock`: Challenge: distributed deadlock detection (5 points, about 20 minutes)
# <!-- /resources -->

# %%
from dtcourse.runtime.widgets import resource_list

resource_list("phase2")

# %% [markdown]
# ### The tools of this phase
#
# Protocols in this course are written once, as *actors*: a node is a class whose handlers
# (`on_start`, `on_message`, `on_timeout`, `on_recover`) take an immutable state and return
# the next one, and act only through an `out` collector: `out.send`, `out.log(record,
# force=True)`, `out.set_timer`, `out.vote`, `out.decide`. The same classes run in seeded
# random runs (one schedule, with faults) and in the model checker (every schedule within a
# fault budget), which checks the atomic-commit properties AC1 to AC3 on every state, and
# AC4 on every state reached without any failure (AC4 says nothing about runs with one).
#
# A timer names the nodes it waits for: `out.set_timer("votes", waiting_on=("P1", "P2"))`.
# Under a perfect failure detector (`timing="perfect"`) such a timer fires only once one of
# those nodes has crashed or is cut off, so a timeout never lies; a timer waiting on nobody
# (`waiting_on=()`) may fire at any moment, which is how a node models giving up for reasons
# of its own. With ordinary timeouts (`timing="async"`) any timer may fire at any moment.
#
# - `build("2pc", n, ...)` and `build("3pc", n, ...)` make the course's protocols as actor
#   systems, with the faults the checker may inject (`crashes=`, `recover=`, `loss=`,
#   `partitions=`) and the timing assumption (`timing="async"` or `"perfect"`).
# - `simulate(system, seed=..., loss=..., faults=[...])` runs one seeded schedule with time
#   and returns its `trace`, `metrics` and `decisions`; `chaos(...)` runs many of them.
# - `model_check(system)` explores every schedule and returns a result with the shortest
#   counterexample for each violated property, and a `blocking` run if a live participant
#   can wait forever.
# - `sequence_diagram(trace)` draws a run; `system.trace_of(path)` turns a checker path into
#   a trace; `plot_metrics(trace)` counts messages and log writes.

# %%
import matplotlib.pyplot as plt
from IPython.display import display

from dtcourse.engine.checker import check as model_check
from dtcourse.commit.protocols import build
from dtcourse.engine.sim import Fault, Latency, chaos, simulate
from dtcourse.pictures.statemachines import protocol_state_machine
from dtcourse.pictures.plots import plot_metrics
from dtcourse.pictures.sequence import sequence_diagram
from dtcourse.pictures.states import state_diagram

# %% [markdown]
# <!-- resource:p2.twopc -->
# ## 1. Two-Phase Commit
#
# *Article · reading 40 minutes + exercises about 70 minutes · Focus: Understanding the two-phase commit protocol*
# <!-- /resource -->

# %% [markdown]
# Two-phase commit (2PC) is the classic solution to atomic commitment: getting several
# sites to commit or abort a transaction together. Jim Gray described it in his 1978 "Notes
# on Data Base Operating Systems" [Gray 1978]; it is the protocol behind XA, PostgreSQL's
# `PREPARE TRANSACTION`, and the commit step of Spanner and many sharded databases. This
# resource goes through it in detail: who sends what, which states each party passes
# through, which log writes must be forced and why, what each party may do when a timeout
# fires, how a crashed party recovers from its log, and the one scenario in which 2PC
# cannot make progress at all. We follow the presentation of Bernstein, Hadzilacos and
# Goodman, chapter 7 [Bernstein et al. 1987], and Kleppmann [Kleppmann 2017, ch. 9;
# Kleppmann 2021, §7.1].

# %% [markdown]
# ### The atomic commitment problem, stated precisely
#
# Each participant casts a **vote**: Yes (I can commit my part) or No (I cannot). Each
# process that reaches a **decision** reaches Commit or Abort. Bernstein, Hadzilacos and
# Goodman require an atomic commitment protocol to satisfy [Bernstein et al. 1987, ch. 7]:
#
# | | property | in words |
# |---|---|---|
# | AC1 | agreement | all processes that reach a decision reach the same one |
# | AC2 | irreversibility | a process cannot reverse its decision after it has reached one |
# | AC3 | validity (veto) | the Commit decision can only be reached if all processes voted Yes |
# | AC4 | non-triviality | if there are no failures and all processes voted Yes, the decision is Commit (a statement about failure-free runs only) |
# | AC5 | termination | in any execution with only the failures the protocol tolerates, if all failures are repaired and no new ones occur for long enough, all processes eventually decide |
#
# AC1 to AC3 are *safety* properties (nothing bad ever happens) and the model checker
# checks them as invariants. AC4 rules out the useless protocol that always aborts, and it
# only constrains runs in which nothing fails: after a crash, a lost message or a timeout,
# aborting is always allowed, even if every vote was Yes. The checker therefore tests AC4
# only in states reached without any failure. AC5 is
# a *liveness* property, and it is weaker than you might expect: it only promises a decision
# once failures have been repaired. It does *not* promise that a live process can decide
# while another is still down. That gap is where blocking lives.

# %% [markdown]
# ### Roles and messages
#
# One process is the **coordinator** (in XA terms, the transaction manager); the others are
# **participants** (resource managers; R* calls them subordinates). Often the coordinator is
# also a participant, or runs inside the application server; here we keep it separate. The
# participants have already done the transaction's work (their branch is in the *working*
# state, holding locks), and the application asks the coordinator to commit.
#
# ```
# Coordinator                 Participant P1            Participant P2
#     |------ PREPARE ------------->|                          |
#     |------ PREPARE ------------------------------------------>|
#     |                     force <prepared>            force <prepared>
#     |<----- YES ------------------|                          |
#     |<----- YES ----------------------------------------------|
# force <commit>   (commit point)
#     |------ COMMIT -------------->|                          |
#     |------ COMMIT ------------------------------------------->|
#     |                     force <commit>              force <commit>
#     |                     release locks               release locks
#     |<----- ACK ------------------|                          |
#     |<----- ACK ----------------------------------------------|
# write <end> (lazy)
# ```
#
# **Phase 1 (voting).** The coordinator sends PREPARE (BHG call it VOTE-REQ) to every
# participant. A participant that can commit forces a *prepared* record to its log and
# replies YES. A participant that cannot (a constraint failed, it lost its locks, it crashed
# earlier and forgot the branch) replies NO and aborts its branch at once.
#
# **Phase 2 (decision).** If every vote is YES, the coordinator forces a *commit* record and
# sends COMMIT to all. If any vote is NO, or some vote does not arrive in time, it decides
# abort and sends ABORT (to those that voted YES; a NO voter has already aborted). Each
# participant records the decision, applies it, releases its locks, and replies ACK. When
# all ACKs are in, the coordinator writes an *end* record and may forget the transaction.
#
# The crucial moment is the coordinator's forced commit record: that is the **commit
# point** of the distributed transaction. Before it, the transaction can still be aborted;
# after it, it is committed, whatever crashes follow.
#
# **The 2PC of this course.** The protocol the hands-on cells run, `build("2pc", ...)`, is
# the one drawn above, as R* runs it: ACKs, and a lazy end record once they are all in. The
# one you will write leaves out the ACKs and the end record. A participant that has voted
# YES and hears nothing asks the coordinator again (a `DecisionRequest`), so the
# coordinator never needs to know who has heard the decision; the price is that it can
# never forget a decision, because a participant might still ask. Real systems collect
# ACKs so that the coordinator can forget and keep its log short.

# %% [markdown]
# ### Hands-on: a commit, and a run with crashes and lost messages
#
# The model checker explores every run of the course's 2PC with two participants that both
# vote yes; it also keeps an example run for each `sometimes` property. Here is the commit:

# %%
commit_system = build("2pc", 2, votes="yes", timing="perfect")
commit_result = model_check(commit_system, max_states=max_states)
print(commit_result.summary().splitlines()[0])
display(sequence_diagram(commit_system.trace_of(commit_result.examples["some run commits"]),
                         title="2PC: a failure-free commit"))

# %% [markdown]
# The simulator runs the same nodes on one schedule, with time: message delays, timeouts,
# and the faults you ask for. Here the coordinator crashes at time 2.2, about when the
# votes reach it, and recovers at time 12, while the network loses a tenth of the messages.
# Change `seed` and run the cell again: the delays and the losses change, and AC1 to AC3
# hold in every run (AC4 has nothing to say here: this run has failures, so aborting would
# be allowed). Look for the forced writes (filled squares) before each vote and before the
# decision, and for the participants that time out and ask the coordinator again.

# %%
faulty_run = simulate(
    build("2pc", 2, votes="yes"),
    seed=seed,
    loss=0.1,
    faults=[Fault(2.2, "crash", "C"), Fault(12.0, "recover", "C")],
)
print(f"decisions: {faulty_run.decisions}; violated: {list(faulty_run.violations) or 'nothing'}")
display(sequence_diagram(faulty_run.trace, max_events=60,
                         title=f"2PC: the coordinator crashes, messages get lost (seed {seed})"))
display(plot_metrics(faulty_run.trace))

# %% [markdown]
# The same run, one event at a time: drag the slider (or use the arrows) and watch who
# knows what after each step. This viewer works for any trace, including the checker's
# counterexamples below (`trace_viewer(system.trace_of(result.blocking))`).

# %%
from dtcourse.runtime.widgets import trace_viewer

trace_viewer(faulty_run.trace)

# %% [markdown]
# One run proves little. `chaos` makes many seeded runs with random faults (lost messages,
# crashes at random times, recovery ten time units later) and counts how they end. 2PC
# never lets one participant commit while another aborts ("mixed"); "undecided" runs are the
# ones where a participant was still waiting when the run ended.

# %%
report = chaos(lambda: build("2pc", 2, votes="any"), runs=chaos_runs, seed=seed)
print(f"{report.runs} runs in {report.seconds:.1f} s ({report.runs_per_second:,.0f} runs/s)")
print(f"outcomes: {report.outcomes}; runs that broke atomicity: {len(report.failing_seeds)}")

# %% [markdown]
# ### The states
#
# **Participant.**
#
# ```
#            PREPARE, can commit: force <prepared>, send YES
#  working ------------------------------------------------> prepared (uncertain)
#     |                                                        |        |
#     | PREPARE and cannot commit, or                 COMMIT   |        | ABORT
#     | timeout waiting for PREPARE                            v        v
#     +------------------> aborted                        committed  aborted
# ```
#
# In the **prepared** state the participant has given up its right to decide. It has
# promised to commit if told to, so it must keep its locks and its changes ready, and it
# cannot abort on its own either, because the coordinator may already have decided commit.
# That is why this state is also called **uncertain** or **in doubt**. The interval between
# voting YES and learning the decision is the participant's **uncertainty window**.
#
# **Coordinator.**
#
# ```
#  initial --send PREPARE--> waiting for votes --all YES: force <commit>--> committed --all ACKs--> ended
#                                    |
#                                    +--a NO, or a timeout: decide abort--> aborted --all ACKs--> ended
# ```

# %% [markdown]
# The participant's and the coordinator's states, drawn from the course's state machines:

# %%
fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
state_diagram(protocol_state_machine("2pc-participant"), ax=axes[0])
state_diagram(protocol_state_machine("2pc-coordinator"), ax=axes[1])
plt.show()

# %% [markdown]
# ### The forced log writes, and why each one is forced
#
# We describe the basic variant, usually called **presumed nothing** (PN) because the
# coordinator presumes nothing about a transaction it has no record of, and records every
# outcome explicitly. The rule behind every forced write is the one from Phase 1: *a
# process forces a record before sending a message that depends on it*.
#
# | who | record | forced? | why |
# |---|---|---|---|
# | participant | prepared (with the branch's redo/undo information and its locks) | **yes**, before sending YES | YES is a promise to commit if told. If the participant crashed and restarted without this record, it would have forgotten the branch and could not keep the promise; the coordinator might commit and this site would be missing its part. |
# | coordinator | commit | **yes**, before sending the first COMMIT | once any participant commits, the decision is final. Without a durable record, a coordinator that crashed after sending one COMMIT would restart, find no decision, and abort, so some sites would commit and others abort (AC1 broken). |
# | participant | commit (or abort) | **yes**, before sending ACK | the ACK lets the coordinator forget. If the participant then crashed with the record lost, it would restart in the prepared state and ask a coordinator that no longer knows the answer. |
# | coordinator | end | no (lazy) | losing it is harmless: on restart the coordinator finds a commit record with no end record, resends COMMIT, and participants ACK again. The cost is a few duplicate messages, so the write need not wait for the disk. |
#
# Two consequences are worth stating. First, a decision message must be **idempotent**:
# receiving COMMIT twice has the same effect as once, because recovery resends it. Second,
# safety needs no forced write *before* phase 1: if the coordinator crashes before deciding,
# it has no decision record and simply aborts on restart, which is safe because no
# participant can have committed.

# %% [markdown]
# ### Timeouts: what each party may do, and when
#
# Messages get lost and processes crash, so every wait needs a timeout. What a process may
# do when the timeout fires depends entirely on where it is:
#
# | who | waiting for | on timeout | why this is safe (or the only safe thing) |
# |---|---|---|---|
# | participant | PREPARE (still working) | **abort unilaterally** | it has not voted; the coordinator cannot commit without its YES (AC3) |
# | coordinator | votes | **decide abort**, send ABORT | no COMMIT has been sent; aborting needs nobody's permission |
# | participant | the decision (prepared) | **ask**; it may not decide | it voted YES, so the coordinator may have committed, or may have aborted because someone else voted NO |
# | coordinator | ACKs | resend the decision | it cannot forget until every participant knows |
#
# A prepared participant that times out runs a **termination protocol**: it asks the
# coordinator again, and it may also ask the other participants (BHG's *cooperative
# termination protocol*). If any of them already knows the decision, or is still in the
# working state (it has not voted, so it can abort and the transaction cannot have
# committed), the asker can decide. If every participant it can reach is itself uncertain, it
# learns nothing and must wait.
#
# The course's 2PC, and the participant you will write, do **not** cooperate: a prepared
# participant asks only the coordinator. `build("2pc", n, cooperative=True)` adds the
# cooperative termination protocol: each participant knows the others (the exercise's
# PREPARE carries their list for this), and an uncertain participant also asks its peers. Cooperation shortens
# blocking, it does not remove it, as the blocking exercise below shows.

# %% [markdown]
# ### Recovery from the log
#
# After a crash a process reads its log and acts on the last record for each transaction:
#
# | process | last record found | action on restart |
# |---|---|---|
# | participant | none for this transaction | abort (it cannot have voted YES, because YES is sent only after forcing prepared) |
# | participant | prepared | **in doubt**: reacquire the locks, keep the changes, ask the coordinator |
# | participant | commit or abort | redo or undo as needed; the transaction is finished |
# | coordinator | none, or no decision | abort; answer "abort" to participants that ask |
# | coordinator | commit, no end | resend COMMIT to all participants, collect ACKs, then write end |
# | coordinator | end | nothing to do |
#
# The in-doubt row is the one that hurts in practice: the participant comes back up, but the
# in-doubt branch still holds its locks, and nothing local can release them. PostgreSQL
# behaves exactly like this: a transaction after `PREPARE TRANSACTION` survives a crash and
# restart, still holds its locks, and is listed in `pg_prepared_xacts` until someone runs
# `COMMIT PREPARED` or `ROLLBACK PREPARED` [PostgreSQL n.d.].

# %% [markdown]
# ### The blocking scenario
#
# Suppose every participant voted YES, and the coordinator crashed before any participant
# received the decision. Every participant is in the prepared state. Each times out and runs
# the termination protocol, but everyone it can ask is also uncertain. Can they decide among
# themselves?
#
# - They cannot **commit**: the coordinator may have decided abort (perhaps its own local
#   branch failed, or it timed out on a vote that was delayed) and it may already have told
#   the client.
# - They cannot **abort**: the coordinator may have forced its commit record and replied
#   "committed" to the client before crashing.
#
# Both are consistent with everything the participants know, so any choice risks breaking
# AC1. They must wait for the coordinator to recover, holding their locks all the while. A
# protocol in which a live process must wait for a failed one to recover is called
# **blocking**, and 2PC is blocking.
#
# Notice what this argument does *not* use: unreliable timeouts. Give the participants a
# perfect failure detector, one that tells them for certain that the coordinator has
# crashed and never suspects a live process, and they are exactly as stuck. Knowing *that*
# the coordinator failed does not tell them *what* it decided, because the decision lives
# only in its log. The model checker runs below use such a detector (`timing="perfect"`)
# and still find the blocked state. Unreliable timeouts matter for the *cure*: the next
# reading's three-phase commit removes this blocking only if failures are detected
# reliably.
#
# This is not a weakness of this particular protocol. Bernstein, Hadzilacos and Goodman
# prove that if communication failures or total failures (all processes down at once) are
# possible, *every* atomic commitment protocol may cause processes to become blocked, and
# that no such protocol can guarantee that a failed process can always recover on its own,
# without talking to anyone [Bernstein et al. 1987, ch. 7]. The intuition is the uncertainty
# window: any protocol must have a moment at which a process has voted YES but does not yet
# know whether everyone else did, and if it is cut off at that moment it cannot safely
# decide. Gray and Lamport put it simply: "The classic Two-Phase Commit protocol blocks if
# the coordinator fails" [Gray & Lamport 2006]. The next resource looks at three-phase
# commit, which avoids blocking by assuming a much friendlier network, and at Paxos Commit,
# which avoids it by replicating the coordinator.
#
# Keep the scale of the problem in proportion. Blocking needs the coordinator to fail inside
# a short window, and it ends when the coordinator comes back. The real damage is what the
# blocked participants hold meanwhile: locks on rows other transactions want (the next but
# one resource is about exactly this).

# %% [markdown]
# ### Hands-on: the checker finds the blocking state
#
# With a budget of one crash, the checker finds a state from which a live participant can
# never decide until the crashed node recovers. Here it is for two participants that may
# vote either way (the exercise below asks you to find and explain it when both vote yes):

# %%
blocking_system = build("2pc", 2, crashes=1, timing="perfect")
blocking_result = model_check(blocking_system, max_states=max_states)
print(blocking_result.summary().splitlines()[0])
if blocking_result.blocking is not None:
    display(sequence_diagram(blocking_system.trace_of(blocking_result.blocking),
                             title="2PC blocks: a crash leaves a participant waiting"))

# %% [markdown]
# ### What it costs
#
# Let n be the number of participants, all of which vote YES, with the coordinator on a
# separate machine and sending directly to each participant (a *flat* tree). Count protocol
# messages only (not the work of the transaction or the client's request and reply) and
# forced log writes at all sites.
#
# One convention needs stating because the literature differs on it: in this course a
# participant that votes NO aborts its branch alone and **writes nothing** to its log (it
# never prepared, so after a crash it has nothing to recover and aborts anyway). In the
# basic protocol of the R* system, a NO voter forces an abort record before voting, and the
# coordinator forces its abort record too [Mohan et al. 1986]. The course's coordinators
# force every decision record, abort included, but the NO voter's record is left out, so
# an abort counted here has one forced write fewer than in R*'s accounting. Every table of
# this course, in this phase and the next, uses the same convention.
#
# | | per participant | total |
# |---|---|---|
# | PREPARE, YES, COMMIT, ACK | 4 messages | **4n messages** |
# | prepared record, commit record | 2 forced writes | 2n |
# | coordinator's commit record | | +1 |
# | | | **2n + 1 forced writes** |
# | coordinator's end record | | +1 lazy write (not counted) |
#
# The course's 2PC counts exactly this: simulate `build("2pc", 3, votes="yes")` without
# faults and its metrics show 12 messages, 7 forced writes and one lazy one. The 2PC you
# will write has no ACKs, so it sends 3n messages.
#
# In time: the client can be told "committed" once the coordinator has forced its commit
# record, which is one round trip (PREPARE out, YES back) plus two forced writes in
# sequence (a participant's prepared record, then the coordinator's commit record) after the
# commit request. Participants hold their locks until the COMMIT reaches them and their own
# commit record is forced: another half round trip and one more forced write. The
# optimization resource shows how presumed abort, presumed commit and read-only
# participants cut these numbers [Mohan et al. 1986].

# %% [markdown]
# ### The exercises
#
# You will implement 2PC yourself, as state machines in the course's actor API: a node is a
# class whose handlers react to a message or a timer and emit effects (send, forced or lazy
# log write, set a timer), and whose `on_recover(log)` rebuilds state from the durable log
# after a crash. First the participant, then the coordinator, then you let the model checker
# find the blocking scenario and explain it.

# %% [markdown]
# ### Exercise `p2.twopc.participant`: the 2PC participant
#
# Complete the participant class `Participant2PC(name, coordinator, vote)` below (`vote` is
# `"yes"`, `"no"` or `"any"`; with `"any"` the participant may abort on its own before
# voting). It talks to its coordinator in the message classes of `dtcourse.commit.messages`:
# it receives `Prepare`, `Commit` and `Abort`, and sends `Vote("yes")`, `Vote("no")` and
# `DecisionRequest()`. Your participant must:
#
# - at the start, set a timer (`out.set_timer("prepare", waiting_on=...)`; wait on the
#   coordinator, or on nobody with `vote == "any"`) and abort unilaterally if it fires
#   before `Prepare` came;
# - on `Prepare`: if `vote == "no"`, vote no and abort; otherwise **force** a prepared
#   record (`out.log(..., force=True)`) *before* sending `Vote("yes")`, and announce the
#   vote with `out.vote("yes")`; answer a repeated `Prepare` with the same vote;
# - once it voted yes, wait: set a timer, and each time it fires ask the coordinator with
#   `DecisionRequest()` and set it again; never decide alone;
# - on `Commit` or `Abort`: write the decision to the log, announce it with
#   `out.decide("commit")` or `out.decide("abort")`, cancel the timers;
# - `on_recover(log)`: rebuild the state from the durable log: a decision in the log is
#   announced again and kept; a prepared record without a decision means uncertain (ask
#   again); nothing means abort.
#
# The state is a frozen dataclass (`PState` below), so the checker can store and compare
# states; keep in it only what the protocol needs, since the checker must explore every
# state. `dtcourse.check` pairs your participant with *every legal coordinator* at once: a
# coordinator that does, in any order, everything 2PC allows (it repeats `Prepare`, commits
# only after every yes vote, aborts whenever it may, answers a `DecisionRequest` or not).
# The model checker runs it without failures (once with a participant told to vote no), with
# one crash, and with a crash and recovery; seeded random runs add lost messages. It also
# checks the order inside each handler: `Vote("yes")` must come after the forced write,
# because a crash can strike between the two. The hidden tests also pair your participant
# with the instructor's coordinator, with more participants and other faults.

# %% dtcourse={"solution": "p2.twopc.participant"}
from dataclasses import dataclass

from dtcourse.engine.actors import Node
from dtcourse.commit.messages import Abort, Commit, DecisionRequest, Prepare, Vote


@dataclass(frozen=True)
class PState:
    phase: str  # "working", "prepared", "commit" or "abort"


class Participant2PC(Node):
    def __init__(self, name, coordinator, vote="yes"):
        super().__init__(name)
        self.coordinator = coordinator
        self.vote = vote

    def on_start(self, out):
        ### BEGIN SOLUTION
        out.set_timer("prepare", waiting_on=() if self.vote == "any" else (self.coordinator,))
        return PState("working")
        ### END SOLUTION

    def on_message(self, state, src, msg, out):
        ### BEGIN SOLUTION
        if isinstance(msg, Prepare) and state.phase == "working":
            out.cancel_timer("prepare")
            if self.vote == "no":
                out.log("abort", force=False)
                out.vote("no")
                out.decide("abort")
                out.send(self.coordinator, Vote("no"))
                return PState("abort")
            out.log("prepared", force=True)
            out.vote("yes")
            out.send(self.coordinator, Vote("yes"))
            out.set_timer("decision", waiting_on=(self.coordinator,))
            return PState("prepared")
        if isinstance(msg, Prepare):
            out.send(self.coordinator, Vote("no" if state.phase == "abort" else "yes"))
            return state
        if isinstance(msg, Commit | Abort):
            value = "commit" if isinstance(msg, Commit) else "abort"
            if state.phase == "prepared" or (state.phase == "working" and value == "abort"):
                out.log(value, force=state.phase == "prepared")
                out.decide(value)
                out.cancel_timer("prepare")
                out.cancel_timer("decision")
                return PState(value)
        return state
        ### END SOLUTION

    def on_timeout(self, state, timer, out):
        ### BEGIN SOLUTION
        if timer == "prepare" and state.phase == "working":
            out.log("abort", force=False)
            out.decide("abort")
            return PState("abort")
        if timer == "decision" and state.phase == "prepared":
            out.send(self.coordinator, DecisionRequest())
            out.set_timer("decision", waiting_on=(self.coordinator,))
        return state
        ### END SOLUTION

    def on_recover(self, log, out):
        ### BEGIN SOLUTION
        for value in ("commit", "abort"):
            if value in log:
                out.decide(value)
                return PState(value)
        if "prepared" in log:
            out.send(self.coordinator, DecisionRequest())
            out.set_timer("decision", waiting_on=(self.coordinator,))
            return PState("prepared")
        out.log("abort", force=False)
        out.decide("abort")
        return PState("abort")
        ### END SOLUTION

# %%
dtcourse.check("p2.twopc.participant", Participant2PC)

# %% dtcourse={"test": "p2.twopc.participant", "points": 3}
from dtcourse.runtime.checks import check_part

check_part("p2.twopc.participant", "failure_free", Participant2PC)
### BEGIN HIDDEN TESTS
from dtcourse_instructor.grader import grade_part

grade_part("p2.twopc.participant", "failure_free", Participant2PC)
grade_part("p2.twopc.participant", "failure_free", Participant2PC, participants=3,
       votes=("yes", "any", "yes"))
### END HIDDEN TESTS

# %% dtcourse={"test": "p2.twopc.participant", "points": 4}
from dtcourse.runtime.checks import check_part

check_part("p2.twopc.participant", "timeouts", Participant2PC)
### BEGIN HIDDEN TESTS
from dtcourse_instructor.grader import grade_part

grade_part("p2.twopc.participant", "timeouts", Participant2PC)
grade_part("p2.twopc.participant", "timeouts", Participant2PC, votes=("any", "yes"))
grade_part("p2.twopc.participant", "timeouts", Participant2PC, participants=3, votes="yes")
### END HIDDEN TESTS

# %% dtcourse={"test": "p2.twopc.participant", "points": 3}
from dtcourse.runtime.checks import check_part

check_part("p2.twopc.participant", "recovery", Participant2PC)
### BEGIN HIDDEN TESTS
from dtcourse_instructor.grader import grade_part

grade_part("p2.twopc.participant", "recovery", Participant2PC)
grade_part("p2.twopc.participant", "recovery", Participant2PC, participants=3, seed=11, runs=80,
       duplicate=True)
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise `p2.twopc.coordinator`: the 2PC coordinator
#
# Complete `Coordinator2PC(name, participants)` below (`participants` is a sequence of
# names). It talks to its participants in the same message classes: it sends `Prepare`,
# `Commit` and `Abort`, and receives `Vote` and `DecisionRequest`. It must:
#
# - at the start, send `Prepare(self.participants)` to every participant
#   (`out.broadcast(...)`) and set a vote timer (`waiting_on=` the participants);
# - decide commit when every participant voted yes, abort on a no vote or when the vote
#   timer fires; **force** the decision record (a record that contains the word `"commit"`
#   or `"abort"`) before sending the decision to everyone, and announce it with
#   `out.decide(...)`;
# - answer a `DecisionRequest` with the decision once it has one (a participant whose
#   `Commit` was lost asks again; a question that comes before the decision can wait);
# - `on_recover(log)`: a decision in the log is announced again and sent to everyone; no
#   decision means abort (logged, announced, sent).
#
# `dtcourse.check` pairs your coordinator with *every legal participant* at once:
# participants that vote yes or no or never, abort on their own before voting, repeat their
# vote, and ask for the decision again and again. The model checker runs it without
# failures, with a participant crash, and with your coordinator crashing and recovering;
# seeded random runs add lost messages. `Commit` must leave only after the forced commit
# record, within a handler too. The hidden tests also pair it with the instructor's
# participants, in larger systems.

# %% dtcourse={"solution": "p2.twopc.coordinator"}
from dataclasses import dataclass, replace

from dtcourse.engine.actors import Node
from dtcourse.commit.messages import Abort, Commit, DecisionRequest, Prepare, Vote


@dataclass(frozen=True)
class CState:
    phase: str  # "collecting", "commit" or "abort"
    yes: frozenset = frozenset()  # the participants that voted yes


class Coordinator2PC(Node):
    def __init__(self, name, participants):
        super().__init__(name)
        self.participants = frozenset(participants)

    def on_start(self, out):
        ### BEGIN SOLUTION
        out.broadcast(self.participants, Prepare(self.participants))
        out.set_timer("votes", waiting_on=self.participants)
        return CState("collecting")
        ### END SOLUTION

    def on_message(self, state, src, msg, out):
        ### BEGIN SOLUTION
        if isinstance(msg, Vote) and state.phase == "collecting":
            if msg.vote == "no":
                return self.decide(state, "abort", out)
            yes = state.yes | {src}
            if yes == self.participants:
                return self.decide(replace(state, yes=yes), "commit", out)
            return replace(state, yes=yes)
        if isinstance(msg, DecisionRequest) and state.phase != "collecting":
            out.send(src, Commit() if state.phase == "commit" else Abort())
        return state
        ### END SOLUTION

    def on_timeout(self, state, timer, out):
        ### BEGIN SOLUTION
        if timer == "votes" and state.phase == "collecting":
            return self.decide(state, "abort", out)
        return state
        ### END SOLUTION

    def on_recover(self, log, out):
        ### BEGIN SOLUTION
        for value in ("commit", "abort"):
            if value in log:
                out.decide(value)
                out.broadcast(self.participants, Commit() if value == "commit" else Abort())
                return CState(value)
        return self.decide(CState("collecting"), "abort", out)
        ### END SOLUTION

    def decide(self, state, value, out):
        """Force the decision, announce it, tell everyone; the next state."""
        ### BEGIN SOLUTION
        out.log(value, force=True)
        out.decide(value)
        out.cancel_timer("votes")
        out.broadcast(self.participants, Commit() if value == "commit" else Abort())
        return replace(state, phase=value)
        ### END SOLUTION

# %%
dtcourse.check("p2.twopc.coordinator", Coordinator2PC)

# %% dtcourse={"test": "p2.twopc.coordinator", "points": 4}
from dtcourse.runtime.checks import check_part

check_part("p2.twopc.coordinator", "failure_free", Coordinator2PC)
### BEGIN HIDDEN TESTS
from dtcourse_instructor.grader import grade_part

grade_part("p2.twopc.coordinator", "failure_free", Coordinator2PC)
grade_part("p2.twopc.coordinator", "failure_free", Coordinator2PC, participants=3,
       votes=("any", "yes", "any"))
### END HIDDEN TESTS

# %% dtcourse={"test": "p2.twopc.coordinator", "points": 4}
from dtcourse.runtime.checks import check_part

check_part("p2.twopc.coordinator", "timeouts", Coordinator2PC)
### BEGIN HIDDEN TESTS
from dtcourse_instructor.grader import grade_part

grade_part("p2.twopc.coordinator", "timeouts", Coordinator2PC)
grade_part("p2.twopc.coordinator", "timeouts", Coordinator2PC, participants=3, votes="yes")
### END HIDDEN TESTS

# %% dtcourse={"test": "p2.twopc.coordinator", "points": 4}
from dtcourse.runtime.checks import check_part

check_part("p2.twopc.coordinator", "recovery", Coordinator2PC)
### BEGIN HIDDEN TESTS
from dtcourse_instructor.grader import grade_part

grade_part("p2.twopc.coordinator", "recovery", Coordinator2PC)
grade_part("p2.twopc.coordinator", "recovery", Coordinator2PC, participants=3, seed=21, runs=80)
### END HIDDEN TESTS

# %% dtcourse={"test": "p2.twopc.coordinator", "points": 3}
from dtcourse.runtime.checks import check_part

check_part("p2.twopc.coordinator", "lossy", Coordinator2PC)
### BEGIN HIDDEN TESTS
from dtcourse_instructor.grader import grade_part

grade_part("p2.twopc.coordinator", "lossy", Coordinator2PC)
grade_part("p2.twopc.coordinator", "lossy", Coordinator2PC, participants=3, seed=12, runs=80,
       duplicate=True)
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise `p2.blocking`: find the blocking scenario and explain it
#
# Run the model checker on the course's 2PC with **two** participants that vote yes, one
# crash, and a perfect failure detector:
# `build("2pc", 2, votes="yes", crashes=1, timing="perfect")`. Its result's `blocking`
# field is the shortest run that ends in a blocked state; draw it with
# `sequence_diagram(system.trace_of(result.blocking))`. Then fill in `blocking_answer`, a
# dict with exactly these keys:
#
# - `"result"`: the `CheckResult` you got;
# - `"failed"`: the name of the node that crashed;
# - `"votes_received"`: how many `Vote` messages the coordinator had *received* before it
#   crashed;
# - `"participants"`: each participant's phase in the blocked state, one of `"working"`,
#   `"prepared"`, `"committed"`, `"aborted"`, e.g. `{"P1": ..., "P2": ...}`;
# - `"coordinator_decision"`: the decision in the coordinator's durable log (`"commit"`,
#   `"abort"`, or `None`).
#
# Then say in one sentence, for yourself, why the blocked participant may not decide, and
# what the other participant may still do.
#
# A remark on what you will find. The shortest blocking run has one participant prepared
# and the other still *working*: a run the cooperative termination protocol above would
# resolve, since the prepared participant could ask its peer, learn that it has not voted,
# and abort with it. It blocks here because the course's 2PC does not cooperate. As a
# follow-up (not graded), build the same system with `cooperative=True` and look at its
# shortest blocking run: now every participant is prepared before the coordinator
# crashes, which is the scenario of the reading, and no amount of asking peers helps.

# %% dtcourse={"solution": "p2.blocking"}
### BEGIN SOLUTION
two_pc = build("2pc", 2, votes="yes", crashes=1, timing="perfect")
found = model_check(two_pc)
display(sequence_diagram(two_pc.trace_of(found.blocking), title="2PC: the blocking run"))
blocking_answer = {
    "result": found,
    "failed": "C",
    "votes_received": 0,
    "participants": {"P1": "prepared", "P2": "working"},
    "coordinator_decision": None,
}
### END SOLUTION

# %%
dtcourse.check("p2.blocking", blocking_answer)

# %% dtcourse={"test": "p2.blocking", "points": 1}
from dtcourse.runtime.checks import check_part

check_part("p2.blocking", "found", blocking_answer)
### BEGIN HIDDEN TESTS
from dtcourse_instructor.grader import grade_part

grade_part("p2.blocking", "found", blocking_answer)
grade_part("p2.blocking", "found", blocking_answer, participants=2, votes="yes", crashes=1,
       timing="perfect")
### END HIDDEN TESTS

# %% dtcourse={"test": "p2.blocking", "points": 1}
from dtcourse.runtime.checks import check_part

check_part("p2.blocking", "failed", blocking_answer)

# %% dtcourse={"test": "p2.blocking", "points": 1}
from dtcourse.runtime.checks import check_part

check_part("p2.blocking", "votes", blocking_answer)

# %% dtcourse={"test": "p2.blocking", "points": 2}
from dtcourse.runtime.checks import check_part

check_part("p2.blocking", "participants", blocking_answer)

# %% [markdown]
# ### Sources
#
# - Gray, J. "Notes on Data Base Operating Systems", in *Operating Systems: An Advanced Course*, LNCS 60, Springer, 1978. https://doi.org/10.1007/3-540-08755-9_9
# - Bernstein, P. A., Hadzilacos, V., Goodman, N. *Concurrency Control and Recovery in Database Systems*, Addison-Wesley, 1987, ch. 7 "Distributed Recovery" (2PC in §7.4). https://www.microsoft.com/en-us/research/people/philbe/book/
# - Kleppmann, M. *Designing Data-Intensive Applications*, O'Reilly, 2017; ch. 9, "Atomic Commit and Two-Phase Commit (2PC)". https://dataintensive.net/
# - Kleppmann, M. *Distributed Systems* lecture notes, University of Cambridge, 2021/22, §7.1 "Two-phase commit". https://www.cl.cam.ac.uk/teaching/2122/ConcDisSys/dist-sys-notes.pdf (video: "Distributed Systems 7.1: Two-phase commit", https://www.youtube.com/watch?v=-_rdWB9hN1c)
# - Gray, J., Lamport, L. "Consensus on Transaction Commit", *ACM TODS* 31(1), 2006. https://www.microsoft.com/en-us/research/publication/consensus-on-transaction-commit/
# - Mohan, C., Lindsay, B., Obermarck, R. "Transaction Management in the R\* Distributed Database Management System", *ACM TODS* 11(4), 1986. https://doi.org/10.1145/7239.7266
# - PostgreSQL Global Development Group. "PREPARE TRANSACTION", PostgreSQL documentation, n.d. https://www.postgresql.org/docs/current/sql-prepare-transaction.html

# %% [markdown]
# <!-- resource:p2.threephase -->
# ## 2. Three-Phase Commit
#
# *Article · reading 35 minutes + exercises about 40 minutes · Focus: Understanding the three-phase commit protocol*
# <!-- /resource -->

# %% [markdown]
# Two-phase commit blocks: if the coordinator fails at the wrong moment, participants that
# voted YES must wait for it to come back, holding their locks. In 1981 Dale Skeen asked
# what exactly makes a commit protocol block, found a precise answer, and built a protocol
# that does not: three-phase commit (3PC) [Skeen 1981]. This resource derives 3PC from
# Skeen's rule, walks through its termination protocol, and then looks hard at the
# assumptions that make it work, because the moment they fail (a network partition) 3PC
# does something worse than blocking: it lets one side commit while the other aborts. We end
# with the two modern answers, E3PC and Paxos Commit.

# %% [markdown]
# ### Why 2PC blocks, in one picture
#
# Think of each site as a finite-state machine. Skeen's key notion is the **concurrency
# set** of a local state s: the set of states that *other* sites may be in at the same time
# as this site is in s. Look at a 2PC participant that has voted YES and is waiting:
#
# ```
#                         coordinator may be in:
# participant in    -->   still collecting votes   (others may still vote NO: abort possible)
# "prepared"              decided COMMIT            (some site may already be committed)
# (uncertain)             decided ABORT             (some site may already be aborted)
# ```
#
# Both a commit state and an abort state are in the concurrency set of "prepared". That is
# the whole problem: if a prepared participant finds itself alone, nothing it knows rules
# out either outcome, so it cannot safely pick one. We say the prepared state is **adjacent**
# to both commit and abort.
#
# Skeen also distinguishes **committable** states. A state is committable if a site being in
# it implies that *every* site has voted YES. In 2PC the only committable state is
# "committed" itself: a prepared participant knows its own vote, not the others'.

# %% [markdown]
# ### Skeen's rule for non-blocking
#
# Skeen's fundamental non-blocking theorem (for site failures, with failures reliably
# detected) says a commit protocol is non-blocking if and only if, at every site:
#
# 1. no local state has a concurrency set containing both an abort and a commit state; and
# 2. no non-committable state has a concurrency set containing a commit state.
#
# Rule 1 says: whatever state you are in, at most one of the two outcomes can already have
# happened somewhere. Rule 2 says: if someone may already have committed, you must know
# that everyone voted YES. 2PC's prepared state breaks both rules.
#
# The fix is to insert a **buffer state** between "prepared" and "committed" so that no site
# can jump to commit while another is still uncertain. That buffer state, reached only after
# everyone has voted YES, is committable; call it **pre-committed**. Now:
#
# | participant state | may coexist with | rule 1 | rule 2 |
# |---|---|---|---|
# | working | working, prepared, aborted | ok (no commit) | ok |
# | prepared (uncertain) | working, prepared, pre-committed, aborted | ok (no commit) | ok (no commit) |
# | pre-committed (committable) | prepared, pre-committed, committed | ok (no abort) | committable, so ok |
# | committed | pre-committed, committed | ok | ok |

# %% [markdown]
# ### The protocol
#
# 3PC splits 2PC's second phase in two. With n participants:
#
# ```
# Coordinator                       Participants
#   --- VOTE-REQ ---------------->   vote; force <prepared> if YES
#   <-- YES / NO -----------------
#   if any NO or timeout: ABORT, done
#   --- PRE-COMMIT -------------->   enter pre-committed (committable)
#   <-- ACK ----------------------
#   force <commit>
#   --- COMMIT ------------------>   force <commit>, release locks
# ```
#
# Phase 1 is 2PC's voting phase. In phase 2 the coordinator tells everyone that everyone
# voted YES; participants move to the committable state and acknowledge. Only when it has
# the acknowledgements (or has detected that the missing ones belong to crashed sites) does
# the coordinator commit and send COMMIT in phase 3. In the failure-free case 3PC adds one
# round trip (PRE-COMMIT and its ACK) per participant, and one extra round trip of latency
# on the commit path [Skeen 1981; Bernstein et al. 1987, ch. 7]. Count messages with one
# convention on both sides: without acknowledgements of the final decision (as in the
# course's 3PC and the 2PC you write) 3PC sends **5** messages per participant (VOTE-REQ,
# vote, PRE-COMMIT, ACK, COMMIT) against 2PC's **3**; if both acknowledge the decision, as
# textbook 2PC and the course's `build("2pc")` do, it is **6** against **4**. "Five
# instead of four" mixes the two.
#
# #### Timeouts
#
# | who | waiting for | on timeout |
# |---|---|---|
# | participant | VOTE-REQ (working) | abort unilaterally, as in 2PC |
# | coordinator | votes | decide abort |
# | participant | PRE-COMMIT or ABORT (prepared) | run the termination protocol |
# | coordinator | ACKs of PRE-COMMIT | treat silent participants as crashed; commit anyway |
# | participant | COMMIT (pre-committed) | run the termination protocol |
#
# The fourth row shows where 3PC leans on its assumptions: the coordinator commits without
# hearing from a participant, because it *assumes* that a silent participant has crashed
# (and will learn the outcome when it recovers), not that it is alive on the other side of a
# broken link.

# %% [markdown]
# The 3PC participant's states. The new state, precommitted, sits between prepared and
# committed: nobody commits while anybody could still be working or aborted.

# %%
display(state_diagram(protocol_state_machine("3pc-participant")))

# %% [markdown]
# ### The termination protocol
#
# When participants time out waiting for the coordinator, the operational participants run
# a **termination protocol** [Skeen 1981; Bernstein et al. 1987, ch. 7]:
#
# 1. **Elect** a new coordinator among the operational participants (for example the one
#    with the lowest identifier still alive).
# 2. The new coordinator asks every operational participant for its state.
# 3. It **decides** by these rules, in order:
#
# | rule | if the reported states include | decision |
# |---|---|---|
# | TR1 | some aborted, or some still working (not voted) | abort; send ABORT |
# | TR2 | some committed | commit; send COMMIT |
# | TR3 | all uncertain (prepared), none pre-committed | abort; send ABORT |
# | TR4 | some pre-committed, none committed | send PRE-COMMIT to the uncertain ones, wait for ACKs, then commit |
#
# 4. If the new coordinator itself fails, elect another and start again.
#
# Why are TR3 and TR4 safe? Under the assumptions below, the original coordinator sends
# COMMIT only after every operational participant has acknowledged PRE-COMMIT. So if anyone
# at all has committed, every operational participant is at least pre-committed, and TR3
# never fires when a commit has happened. Conversely, nobody enters pre-committed unless
# everyone voted YES, and a pre-committed site cannot coexist with an aborted one (rule 1),
# so TR4 never commits when an abort has happened. TR4 first brings the uncertain sites up
# to pre-committed, so that if the new coordinator crashes mid-way, the next one still sees
# a consistent picture.
#
# Worked example with three participants P1, P2, P3. The coordinator sends PRE-COMMIT, which
# reaches P1 only, and crashes. P1 is pre-committed, P2 and P3 are uncertain. They time out,
# elect P1 (lowest id), and report: {pre-committed, uncertain, uncertain}. TR4 applies: P1
# sends PRE-COMMIT to P2 and P3, collects their ACKs, and commits. Had PRE-COMMIT reached
# nobody, the report would be {uncertain, uncertain, uncertain} and TR3 would abort. Either
# way the operational sites decide without waiting for the failed coordinator: **3PC is
# non-blocking under crash failures**, so long as at least one site stays up. (After a
# *total* failure the first sites to recover may still have to wait, because the last site
# to fail may have decided.)

# %% [markdown]
# ### Hands-on: the checker on 3PC under crash-stop
#
# Claims like "3PC is non-blocking" are exactly what the model checker is for. Give 2PC
# and 3PC the same fault budget: two participants that may vote either way, up to two
# crashes with no recovery (crash-stop), and a perfect failure detector (a timer waiting on
# a node fires only once that node has crashed); together these are the *fail-stop* model
# of Phase 1. The checker explores every schedule and
# asks, in every reachable state, whether a live undecided participant can still decide
# without anyone recovering.
#
# 3PC needs its termination rule as an argument (`rule=`): writing it is the exercise at
# the end of this resource, so here it runs with `naive_rule`, a deliberately wrong rule
# that a 2PC habit suggests: commit if somebody already committed, abort otherwise.

# %%
from dtcourse.commit.protocols.threepc import naive_rule

for label, system in (
    ("2PC, crash-stop, perfect failure detector", build("2pc", 2, crashes=2, timing="perfect")),
    ("3PC with the naive rule, same failures", build("3pc", 2, crashes=2, rule=naive_rule)),
):
    result = model_check(system, max_states=max_states)
    unsafe = [v.property for v in result.violations if v.kind == "always"]
    print(f"{label}: {result.distinct:,} states, "
          f"{'blocks' if result.blocking is not None else 'never blocks'}, "
          f"{'violates ' + ', '.join(unsafe) if unsafe else 'AC1-AC4 hold'}"
          f"{'' if result.complete else ' (search cut short: raise max_states)'}")
naive_path = next(v.path for v in result.violations if v.property.startswith("AC1"))
display(sequence_diagram(system.trace_of(naive_path),
                         title="3PC with the naive rule: the shortest AC1 violation"))

# %% [markdown]
# 2PC blocks. 3PC never does, but with the naive rule it breaks agreement: the coordinator
# commits once both participants have acknowledged PRE-COMMIT and crashes before its COMMIT
# arrives; the survivors, both pre-committed, elect P1, and the naive rule aborts. That is
# the case TR4 is for. With TR1 to TR4 (your rule, in the exercise) the checker finds no
# violation and no blocking, as long as the timeouts never lie; the exercise's last part
# shows what happens when they do. The next section shows the failure that makes timeouts
# lie in practice.

# %% [markdown]
# ### The assumptions, and what breaks without them
#
# Everything above rests on one sentence in the timeout table: *a participant that does not
# answer has crashed*. That is true only in a **synchronous** system: message delays and
# processing times are bounded, so a well-chosen timeout is a **perfect failure detector**
# (it never suspects a live process). In particular, there must be **no network partitions**,
# because a partitioned process is alive but looks dead. Kleppmann summarises it: "3PC
# assumes a network with bounded delay and nodes with bounded response times", while real
# networks have unbounded delay and pauses, and "nonblocking atomic commit requires a perfect
# failure detector" [Kleppmann 2017, ch. 9].
#
# Here is what happens under a partition. Three participants; the coordinator C sends
# PRE-COMMIT; it reaches P1; then the network splits into {C, P1} and {P2, P3}.
#
# ```
# side A: {C, P1}                        side B: {P2, P3}
# P1 pre-committed                       P2, P3 prepared (uncertain)
# C times out on ACKs from P2, P3        P2, P3 time out on C
#   -> "P2 and P3 have crashed"            -> "C and P1 have crashed"
# C commits, sends COMMIT to P1          elect P2; states {uncertain, uncertain}
# P1 commits                             TR3: abort; P2, P3 abort
# ```
#
# Each side follows the protocol to the letter, and each side is right about what it can
# see. The result violates AC1: P1 committed, P2 and P3 aborted. A blocked 2PC participant
# holds locks until someone repairs the coordinator; a partitioned 3PC run can corrupt data
# silently. That is a large part of why 3PC is taught far more often than it is deployed.
# Gray and Lamport note that they knew of no three-phase commit algorithm with a complete
# proof against a clearly stated correctness condition [Gray & Lamport 2006].
#
# This is not a bug that a cleverer termination rule could fix. In an asynchronous system,
# no protocol can both stay safe and guarantee that a connected minority decides while it
# cannot tell crashed processes from unreachable ones. The way out is to make decisions only
# in a **quorum** (a majority), so that two disjoint groups can never both decide.

# %% [markdown]
# ### Hands-on: the partition, simulated
#
# The scenario above in the simulator, on 3PC with the naive rule (here it decides as TR1
# to TR4 would: P2 and P3 both report prepared, TR3): every message takes one time
# unit, and the network splits `{C, P1} | {P2, P3}` at time 2.5, just after C sent
# PRE-COMMIT. The shaded band is the partition. Follow C's acknowledgement timers for P2
# and P3 (the failure detector reports them as failed, because they are cut off), and P2's
# election on the other side.

# %%
split_run = simulate(
    build("3pc", 3, votes="yes", rule=naive_rule),
    seed=seed,
    latency=Latency("constant", 1, 1),
    faults=[Fault(2.5, "partition", groups=(("C", "P1"), ("P2", "P3")))],
)
print(f"decisions: {split_run.decisions}; violated: {list(split_run.violations) or 'nothing'}")
display(sequence_diagram(split_run.trace,
                         title="3PC under a partition: one side commits, the other aborts"))

# %% [markdown]
# ### The modern answers
#
# **E3PC.** Quorum-based versions of 3PC let a majority side decide during a partition
# while the minority waits. Keidar and Dolev showed that an earlier quorum-based 3PC could
# still block a connected majority after a sequence of failures and recoveries, and gave
# **E3PC** (Enhanced 3PC), which lets any connected quorum eventually decide once failures
# stop, with the same cost as 3PC when there are no failures [Keidar & Dolev 1995].
#
# The second answer, Paxos Commit, goes further: it stops asking "has the coordinator
# crashed?" at all, and builds atomic commit on **consensus**. Consensus deserves a short
# primer of its own first, because its one famous theorem explains what any non-blocking
# commit protocol can and cannot promise.

# %% [markdown]
# ### A consensus primer
#
# **The problem.** A set of processes must agree on one value. Each process *proposes* a
# value, and the protocol must ensure:
#
# | property | in words |
# |---|---|
# | agreement | no two processes decide differently |
# | validity | the decided value was proposed by some process |
# | integrity | a process decides at most once |
# | termination | every process that does not crash eventually decides |
#
# The first three are safety properties, the last is liveness: the same split as AC1 to
# AC3 against AC5. Replicated logs (a leader and its followers agreeing on the next entry),
# leader election, and the decision of Paxos Commit and Spanner's replicated participants
# are all consensus in disguise.
#
# **The impossibility.** Fischer, Lynch and Paterson proved in 1985 that in an
# asynchronous system no deterministic protocol solves consensus if even one process may
# crash [Fischer et al. 1985]. For every such protocol there is a schedule, one particular
# order and timing of deliveries, that keeps it undecided forever. The proof rests on the
# fact from Phase 1: a process that waits for a slow one cannot tell it from a crashed one,
# so any rule that eventually stops waiting can be caught at the wrong moment. FLP does not
# say "consensus is impossible"; it says that during bad periods a protocol must give up
# either safety or termination. The practical algorithms (Paxos, Raft) give up termination
# while the network misbehaves and never give up safety.
#
# **How Paxos stays safe.** There are 2F + 1 *acceptors*. A value is *chosen* once a
# majority of them (F + 1) has accepted it in the same *ballot*. Two majorities of the same
# set always share at least one acceptor, and everything rests on that overlap. A process
# that wants to lead picks a ballot number higher than any it has seen and runs two phases:
#
# 1. it asks the acceptors to promise to ignore lower ballots from now on, and to report
#    the value they last accepted, with its ballot; it waits for a majority of answers;
# 2. it proposes a value: the reported value with the highest ballot if there is one, else
#    a value of its own; the value is chosen when a majority accepts it.
#
# If a value was chosen earlier, the new leader's majority overlaps the one that chose it,
# so phase 1 reports it and phase 2 proposes it again: a chosen value is never replaced.
# None of this mentions time. Timeouts only decide when a process *tries* to become
# leader, so a timeout that lies costs at most a wasted ballot. Two would-be leaders that
# keep pre-empting each other (each phase 1 with a higher ballot cancels the other's phase
# 2) stay safe and make no progress: that is the FLP schedule, in practice. Real systems
# break the tie with randomised timeouts, so that once the network is calm for long enough
# one leader finishes: the *eventual synchrony* that progress needs.

# %% [markdown]
# #### Hands-on: timeouts that lie, 3PC against consensus
#
# The difference between the two cures for blocking, measured. Both protocols run the same
# workload many times, **with no crash at all**: three participants that all vote yes,
# message delays drawn from a long-tailed distribution (0.2 time units plus an exponential
# part with mean 1), and timeouts that fire after a fixed time whether or not the other side
# is alive (`timing="async"`), so a slow message looks like a crash. For each timeout the
# cell counts the runs that break safety (AC1 or AC2) and the runs that commit.
#
# 3PC runs with the reading's `naive_rule`, because the correct termination rule is your
# exercise at the end of this reading. The naive rule makes matters worse, but it is not
# the cause: with no crash and a perfect failure detector no timeout ever fires and the
# rule never runs. Once you have written `terminate`, set `demo_rule = terminate` and run
# the cell again: the unsafe runs shrink, but they do not go away.

# %%
import matplotlib.pyplot as plt
import pandas as pd

from dtcourse.commit.protocols import build
from dtcourse.commit.protocols.catalog import build as build_variant
from dtcourse.commit.protocols.threepc import naive_rule
from dtcourse.engine.sim import Latency, chaos

demo_rule = naive_rule  # after exercise p2.threepc, try: demo_rule = terminate
lying_runs = 60 if ci else chaos_runs
rows = []
for timeout in (1.0, 1.5, 2.5, 4.0):
    for label, make in (
        ("3PC", lambda: build("3pc", 3, votes="yes", timing="async", rule=demo_rule)),
        ("Paxos Commit, F = 1",
         lambda: build_variant("paxos commit", 3, "yes", f=1, timing="async")),
    ):
        report = chaos(make, runs=lying_runs, seed=seed, loss=0.0, timeout=timeout,
                       latency=Latency("exponential", 0.2, 1.0))
        rows.append({"protocol": label, "timeout": timeout,
                     "unsafe runs": len(report.failing_seeds),
                     "runs that commit": report.outcomes.get("commit", 0)})
lying = pd.DataFrame(rows)
figure, axes = plt.subplots(1, 2, figsize=(11, 3.4))
for ax, column in zip(axes, ("unsafe runs", "runs that commit")):
    lying.pivot(index="timeout", columns="protocol", values=column).plot.bar(ax=ax, rot=0)
    ax.set_title(f"{column} (of {lying_runs})", loc="left", fontsize=10)
    ax.set_xlabel("timeout (the mean message delay is 1.2)")
figure.suptitle("No crash at all: only slow messages and timeouts that fire too early",
                fontsize=11)
figure.tight_layout()
plt.show()
lying.pivot(index="timeout", columns="protocol")

# %% [markdown]
# Read the two panels together. On the left, 3PC breaks atomicity in a share of the runs
# although nothing crashed: a participant whose coordinator merely looked dead ran the
# termination protocol and decided differently from the others (with a correct rule too:
# the coordinator, timing out on an acknowledgement that was merely slow, commits while
# the participants it gave up on abort). Paxos Commit never does,
# at any timeout: its safety does not depend on timing. On the right is what lying
# timeouts cost Paxos Commit instead: with a short timeout, most runs *abort*, because a
# participant or leader that gives up on a slow process proposes "aborted" for it. That is
# allowed (a timeout counts as a failure, and AC4 only speaks of failure-free runs), and it
# is the price of deciding without knowing: the shorter the timeout, the fewer
# transactions commit. With a generous timeout nearly all commit, and a run that stays
# undecided forever would need the adversarial schedule of FLP, which random delays almost
# never produce.

# %% [markdown]
# #### Atomic commitment and consensus
#
# Atomic commitment looks like consensus on a single bit, commit or abort, but the two
# problems differ in their validity rule, and the difference matters.
#
# - In consensus, any proposed value may win. In atomic commitment, commit may win only if
#   **every** participant voted yes (AC3), and must win if everyone voted yes and nothing
#   failed (AC4). The outcome depends on the input of every single participant, not of a
#   majority.
# - So a protocol that is to decide without blocking must, in every run, either hear each
#   participant's vote or be sure that the silent participant has crashed. Telling "crashed"
#   from "slow" reliably is exactly a perfect failure detector, and this is how Kleppmann
#   sums up the theory: non-blocking atomic commit requires a perfect failure detector
#   [Kleppmann 2017, ch. 9; Guerraoui 1995]. Consensus needs much less: a majority and
#   eventual synchrony, as the primer showed.
#
# The way out is to weaken non-triviality slightly: allow abort not only after a real
# failure but also after a *suspected* one. With that one change, atomic commitment
# reduces to consensus. Each participant sends its vote to everyone; a process proposes
# *commit* to a consensus instance if it has seen a yes from everyone, and *abort* if it saw
# a no or gave up waiting; the consensus decision is the outcome. Agreement and
# irreversibility come from consensus, AC3 from the rule that only a process that saw every
# yes proposes commit, and non-blocking from consensus's own progress. Paxos Commit is a
# cheaper arrangement of the same idea: one consensus instance per participant, whose
# value is that participant's vote (or "aborted" if a leader gave up on it), and commit iff
# every instance chose "prepared". The run above showed both halves of the bargain: never
# unsafe, and aborting when timeouts lie.

# %% [markdown]
# ### Paxos Commit
#
# Gray and Lamport took the blocking problem at its root: the single
# coordinator is the only process that knows the decision. In **Paxos Commit**, each
# participant's vote (prepared or aborted) is decided by its own instance of the Paxos
# consensus algorithm, run by 2F + 1 **acceptors**; the transaction commits if and only if
# every instance chose "prepared" [Gray & Lamport 2006]. Be precise about what it
# guarantees, because this is exactly where 3PC went wrong:
#
# - **Safety needs no timing assumption.** However messages are delayed, lost or
#   reordered, whichever acceptors crash and whoever believes whatever about whom, no two
#   processes decide differently. A partition can stop Paxos Commit; it cannot make it
#   commit on one side and abort on the other.
# - **Progress needs more than F + 1 working acceptors.** It also needs a single leader that
#   stays in charge long enough to finish a ballot, which needs the network to behave
#   synchronously for long enough (*eventual synchrony*): timeouts may lie for a while, but
#   not forever. Two would-be leaders that keep pre-empting each other's ballots make no
#   progress at all. This is not a weakness of Paxos: Fischer, Lynch and Paterson proved
#   that no deterministic consensus protocol can guarantee termination in an asynchronous
#   system in which even one process may crash [Fischer et al. 1985].
#
# Two more facts connect it to what you know:
#
# - **2PC is Paxos Commit with F = 0.** With a single acceptor (the coordinator), the
#   protocol degenerates into two-phase commit: "The Two-Phase Commit protocol is thus the
#   degenerate case of the Paxos Commit algorithm with a single acceptor" [Gray & Lamport
#   2006]. Blocking is exactly what you get when the only acceptor fails.
# - **The cost is modest.** Paxos Commit has the same number of stable-storage write delays
#   as 2PC on the commit path; it needs more messages. For 5 participants and F = 1 (with
#   co-location of processes on the participants' nodes, as the paper assumes for this
#   comparison), the paper counts 12 messages for 2PC,
#   17 for Paxos Commit, and 20 for its faster variant [Gray & Lamport 2006].
#
# | protocol | blocks if the coordinator fails? | safe under partitions? | extra cost over 2PC |
# |---|---|---|---|
# | 2PC | yes | yes (it waits) | none |
# | 3PC | no, under crash failures with a perfect failure detector | **no** | one round trip |
# | E3PC | no, for a connected quorum once failures stop | yes | none beyond 3PC |
# | Paxos Commit | no, while F + 1 of 2F + 1 acceptors work and one leader stays in charge long enough | yes | more messages, same write delays |
#
# Systems you will meet in Phase 3 follow the Paxos Commit idea in spirit: Spanner runs 2PC
# among participants that are themselves Paxos-replicated groups, so a "crashed coordinator"
# is just a leader change [Corbett et al. 2012].

# %% [markdown]
# ### The exercise
#
# In the exercise below you write the heart of 3PC's termination protocol: the rule the
# newly elected coordinator applies to the states of the participants it can reach. It is
# checked against the textbook, then plugged into 3PC, where the model
# checker explores every run with crashes: your rule must never let 3PC block and never
# contradict a decision already made (AC1). Then you let the checker find the shortest
# partition counterexample for yourself and read it.

# %% [markdown]
# ### Exercise `p2.threepc`: the termination rule, in 3PC, and the partition
#
# **The rule.** When the 3PC coordinator fails, the participants still up elect a new
# coordinator, which collects their states and decides by the **termination rule**. Write
# `terminate(states)`: `states` maps each participant that reported (the elected one
# included) to its state, one of `"working"`, `"prepared"` (uncertain), `"precommitted"`,
# `"committed"`, `"aborted"`; return `"commit"` or `"abort"`. When your rule says commit
# while some participants are only prepared, the protocol first brings them to
# precommitted (TR4), as the textbook says.
#
# It is graded three ways:
#
# 1. against the textbook, on every set of states the survivors of a crash-stop run can
#    report (nobody is working or aborted while somebody is precommitted or committed;
#    nobody commits before all precommitted);
# 2. inside 3PC: `build("3pc", 2, rule=terminate, crashes=1)` is 3PC with two
#    participants whose termination rule is yours, one crash-stop failure and a perfect
#    failure detector; the model checker must find AC1 to AC4 and non-blocking intact.
#    Run `model_check(build("3pc", 2, rule=terminate, crashes=1))` yourself to see it. The
#    hidden tests allow more crashes;
# 3. the partition: run the checker on `build("3pc", 2, rule=terminate, partitions=1)` (no
#    crash, one network split). Its AC1 violation (`result.violations`, the one whose
#    `property` starts with `"AC1"`) carries the shortest counterexample as a `path`; draw
#    it with `sequence_diagram(system.trace_of(path))`. Fill in `partition_answer` with
#    these keys:
#    - `"result"`: the `CheckResult`;
#    - `"coordinator_side"`: the set of nodes on C's side of the split, e.g. `{"C", ...}`;
#    - `"committed"` and `"aborted"`: the sets of nodes that decided commit, and abort, in
#      the last state of the counterexample;
#    - `"atomic"`: do all the nodes that decided agree (`True` or `False`)?
#
# Then say for yourself which timer fired on each side, and what each side believed.

# %% dtcourse={"solution": "p2.threepc"}
def terminate(states):
    ### BEGIN SOLUTION
    values = set(states.values())
    if values & {"aborted", "working"}:
        return "abort"
    if values & {"committed", "precommitted"}:
        return "commit"
    return "abort"
    ### END SOLUTION


### BEGIN SOLUTION
split_system = build("3pc", 2, rule=terminate, partitions=1)
split_result = model_check(split_system)
counterexample = next(v.path for v in split_result.violations if v.property.startswith("AC1"))
display(sequence_diagram(split_system.trace_of(counterexample),
                         title="3PC: the shortest partition counterexample"))
partition_answer = {
    "result": split_result,
    "coordinator_side": {"C", "P1"},
    "committed": {"C"},
    "aborted": {"P2"},
    "atomic": False,
}
### END SOLUTION

# %%
dtcourse.check("p2.threepc", {"rule": terminate, "partition": partition_answer})

# %% dtcourse={"test": "p2.threepc", "points": 5}
from dtcourse.runtime.checks import check_part

check_part("p2.threepc", "rule", {"rule": terminate})
### BEGIN HIDDEN TESTS
from dtcourse_instructor.grader import grade_part

grade_part("p2.threepc", "rule", {"rule": terminate})
grade_part("p2.threepc", "rule", {"rule": terminate}, participants=4)
### END HIDDEN TESTS

# %% dtcourse={"test": "p2.threepc", "points": 5}
from dtcourse.runtime.checks import check_part

check_part("p2.threepc", "crash_stop", {"rule": terminate})
### BEGIN HIDDEN TESTS
from dtcourse_instructor.grader import grade_part

grade_part("p2.threepc", "crash_stop", {"rule": terminate})
grade_part("p2.threepc", "crash_stop", {"rule": terminate}, crashes=2)
grade_part("p2.threepc", "crash_stop", {"rule": terminate}, crashes=2, votes=("yes", "any"))
### END HIDDEN TESTS

# %% dtcourse={"test": "p2.threepc", "points": 5}
from dtcourse.runtime.checks import check_part

check_part("p2.threepc", "partition", {"rule": terminate, "partition": partition_answer})

# %% [markdown]
# ### Sources
#
# - Skeen, D. "Nonblocking Commit Protocols", Proc. ACM SIGMOD, 1981. https://doi.org/10.1145/582318.582339 (PDF: http://www.cs.utexas.edu/~lorenzo/corsi/cs380d/papers/Ske81.pdf)
# - Bernstein, P. A., Hadzilacos, V., Goodman, N. *Concurrency Control and Recovery in Database Systems*, Addison-Wesley, 1987, ch. 7 "Distributed Recovery". https://www.microsoft.com/en-us/research/people/philbe/book/
# - Kleppmann, M. *Designing Data-Intensive Applications*, O'Reilly, 2017; ch. 9, "Three-phase commit". https://dataintensive.net/
# - Keidar, I., Dolev, D. "Increasing the Resilience of Atomic Commit, at No Additional Cost", PODS, 1995. https://people.csail.mit.edu/idish/Abstracts/pods95.html
# - Gray, J., Lamport, L. "Consensus on Transaction Commit", *ACM TODS* 31(1), 2006. https://www.microsoft.com/en-us/research/publication/consensus-on-transaction-commit/ (TLA+ specifications: https://github.com/tlaplus/Examples/tree/master/specifications/transaction_commit)
# - Fischer, M. J., Lynch, N. A., Paterson, M. S. "Impossibility of Distributed Consensus with One Faulty Process", *JACM* 32(2), 1985. https://doi.org/10.1145/3149.214121 (PDF: https://groups.csail.mit.edu/tds/papers/Lynch/jacm85.pdf)
# - Guerraoui, R. "Revisiting the Relationship Between Non-Blocking Atomic Commitment and Consensus", WDAG, 1995. https://doi.org/10.1007/BFb0022140
# - Corbett, J. C. et al. "Spanner: Google's Globally-Distributed Database", OSDI, 2012. https://research.google/pubs/spanner-googles-globally-distributed-database-2/

# %% [markdown]
# <!-- resource:p2.challenges -->
# ## 3. Distributed Transaction Challenges
#
# *Article · reading 30 minutes + exercises about 50 minutes · Focus: Common challenges in distributed transactions*
# <!-- /resource -->

# %% [markdown]
# You now know how two-phase commit works and why it can block. This resource is about what
# that means in production: locks that nobody can release, coordinators that take the
# system down with them, a standard (XA) that promises more than it delivers, deadlocks that
# no single database can see, clocks that disagree, and the plain cost in latency and
# throughput. It ends with the case, made by two well-known practitioners, for not using
# distributed transactions at all, which is where Phase 3 picks up.

# %% [markdown]
# ### Locks held while in doubt
#
# A participant that has voted YES must be able to commit later, so it keeps everything the
# commit will need: its changes, and the **locks** that stop other transactions from reading
# or overwriting them. Kleppmann identifies this as the main reason 2PC hurts in practice
# [Kleppmann 2017, ch. 9]. While a transaction is in doubt, every other transaction that
# wants those rows waits. If the coordinator takes 20 seconds to restart, those rows are
# unavailable for 20 seconds. If the coordinator's log is lost, they are unavailable until a
# human intervenes, and restarting the participant does not help: to keep its promise, the
# participant must reacquire the locks of its in-doubt transactions when it recovers.
#
# PostgreSQL's documentation spells out the same facts for its own implementation. A
# transaction after `PREPARE TRANSACTION` keeps its locks; leaving it prepared for long
# "will interfere with the ability of VACUUM to reclaim storage, and in extreme cases could
# cause the database to shut down to prevent transaction ID wraparound" [PostgreSQL n.d.].
# You can see in-doubt transactions in the `pg_prepared_xacts` view, and end them by hand
# with `COMMIT PREPARED 'gid'` or `ROLLBACK PREPARED 'gid'`.
#
# ```
# -- session 1 (driven by a transaction manager)
# BEGIN;
# UPDATE accounts SET balance = balance - 100 WHERE id = 'alice';
# PREPARE TRANSACTION 'transfer-42';      -- forced to disk; session 1 is now free
# -- ... the transaction manager crashes here ...
#
# -- session 2, any time later, even after a server restart
# UPDATE accounts SET balance = 0 WHERE id = 'alice';   -- waits: the row is still locked
# SELECT gid, prepared FROM pg_prepared_xacts;          -- transfer-42 is listed
# ```

# %% [markdown]
# ### Hands-on: an in-doubt transaction holds its locks, live
#
# Two SQLite databases are the participants (each with a durable prepared state); a
# coordinator prepares a transfer at both and dies before deciding. Another session then
# tries to update the same account and is blocked by the in-doubt branch's lock. An
# operator then decides the transaction by hand (what `dtcourse resolve demo-1 --abort`
# does), and the same update goes through. In exercise `p2.recovery` you write the
# coordinator's recovery step, which makes such decisions by itself, from its log.
# (With PostgreSQL, `in_doubt_lock_demo("postgres", dsn=...)` shows `pg_prepared_xacts`.)

# %%
from dtcourse.db.demo import in_doubt_lock_demo

demo = in_doubt_lock_demo()
print(demo)

# %% [markdown]
# ### The coordinator: single point of failure, and its orphans
#
# In 2PC the coordinator's log is the only place the decision lives. Kleppmann points out
# several consequences [Kleppmann 2017, ch. 9]:
#
# - If the coordinator is not replicated, it is a **single point of failure** for every
#   transaction it coordinates. Many coordinators run inside an application server, which
#   silently turns a supposedly stateless server into one whose local disk holds critical
#   state.
# - **Orphaned in-doubt transactions**: if the coordinator's log is lost or corrupted, or a
#   bug makes it forget a transaction, participants are stuck in doubt forever. No timeout
#   can resolve them safely. An administrator must find out what happened (did the client
#   get a "committed"?) and commit or roll back each one by hand.
# - **Heuristic decisions**: many implementations let a participant decide unilaterally to
#   end an in-doubt transaction, commit or abort, without the coordinator. The X/Open XA
#   specification reports such outcomes **per branch**: when the transaction manager calls
#   `xa_commit` or `xa_rollback` on a resource manager, the return code says what happened
#   to *that* branch: `XA_HEURCOM` (it was heuristically committed), `XA_HEURRB`
#   (heuristically rolled back), `XA_HEURMIX` (the branch's own work was partly committed
#   and partly rolled back) or `XA_HEURHAZ` (it may have been completed heuristically, and
#   its outcome is unknown). The resource manager remembers its heuristic decision until
#   the transaction manager calls `xa_forget` [X/Open 1991]. Whether *atomicity* broke is
#   for the transaction manager to work out by combining the branches' codes: an
#   `XA_HEURRB` from one branch while the others committed means the global transaction is
#   mixed, even though no single branch returned `XA_HEURMIX`. Kleppmann's verdict:
#   "heuristic" is a euphemism for *probably breaking atomicity*. A heuristic decision is a
#   conscious violation of AC1, to be used only as an emergency escape.
#
# | situation | safe resolution | unsafe shortcut |
# |---|---|---|
# | coordinator down, will restart | wait; it resends the decision | heuristic decision at a participant |
# | coordinator's log lost | a human reconstructs the outcome (client records, other participants) | roll back everything "to be safe" (some branch may have committed) |
# | some participant already knows the outcome | ask it (cooperative termination) | none needed |

# %% [markdown]
# ### XA and its limits
#
# XA lets one transaction manager coordinate resource managers from different vendors
# (databases, message queues) through a C interface: `xa_start`/`xa_end` to associate work
# with a transaction branch, `xa_prepare`, `xa_commit`, `xa_rollback`, and `xa_recover` to
# list in-doubt branches after a crash [X/Open 1991]. Java's JTA, MySQL's `XA` statements and
# PostgreSQL's prepared transactions all follow its shape. Kleppmann lists its limits
# [Kleppmann 2017, ch. 9]:
#
# - XA must work across systems with nothing in common, so it is a **lowest common
#   denominator**. It has no way for participants to exchange lock information, so it
#   **cannot detect deadlocks across systems**, and it does not work with serializable
#   snapshot isolation, which needs conflicts to be detected across participants.
# - It **amplifies failures**: if any participant is down or slow, every transaction that
#   touches it fails or waits, and the in-doubt locks spread the damage to other
#   transactions.
# - It is slow. Kleppmann reports that distributed transactions in MySQL have been measured
#   at over ten times slower than single-node transactions, largely because of the extra
#   forced writes and round trips.
#
# PostgreSQL is explicit about whom its side of XA is for. `PREPARE TRANSACTION` "is not
# intended for use in applications or interactive sessions"; its purpose is to let an
# external transaction manager perform atomic global transactions. The server setting
# `max_prepared_transactions` defaults to 0, which disables the feature; the documentation
# recommends leaving it at 0 unless you run such a manager, and setting it at least as large
# as `max_connections` if you do [PostgreSQL n.d.].

# %% [markdown]
# ### Distributed deadlock
#
# With locking, two transactions can wait for each other. On one site the engine keeps a
# **wait-for graph** (an edge Ti → Tj means Ti waits for a lock Tj holds) and aborts a victim
# when it finds a cycle. With several sites, a cycle can span sites:
#
# ```
# Site A (holds x)                     Site B (holds y)
# T1 holds lock on x                   T2 holds lock on y
# T2 waits for x  (T2 -> T1)           T1 waits for y  (T1 -> T2)
#
# local graph at A: T2 -> T1           local graph at B: T1 -> T2
# acyclic                              acyclic
# global graph: T1 -> T2 -> T1         cycle: deadlock
# ```
#
# Neither site sees a cycle, so neither aborts anything, and both transactions wait
# forever. The possible responses:
#
# | approach | how | trade-off |
# |---|---|---|
# | timeouts | abort any transaction that waits longer than t | simple; aborts some transactions that were merely slow, and real deadlocks last t |
# | centralized detection | a detector periodically collects every site's local wait-for graph and looks for cycles in the union | simple to reason about; messages and a central point; a graph assembled from snapshots taken at different times can show **phantom deadlocks** (a cycle that never existed at one moment) and abort a transaction needlessly |
# | distributed detection | sites forward wait-for information, or probes, along the edges; a probe that returns to the transaction that sent it reveals a cycle | no central point; more complex |
# | prevention | give each transaction a timestamp when it starts (its age) and let waits go in one direction of age only: wait-die or wound-wait, below | no cycles can form; some aborts are unnecessary |
#
# The two prevention schemes, due to Rosenkrantz, Stearns and Lewis and presented in
# Bernstein, Hadzilacos and Goodman's chapter on two-phase locking [Bernstein et al. 1987,
# ch. 3], differ in who gives way when a transaction requests a lock another one holds:
#
# | scheme | older requester, younger holder | younger requester, older holder | who ever waits |
# |---|---|---|---|
# | **wait-die** | the older one waits | the younger one *dies* (aborts, restarts later with its original timestamp) | only older for younger |
# | **wound-wait** | the older one *wounds* the younger holder (aborts it) and takes the lock | the younger one waits | only younger for older |
#
# In both, a wait-for edge always points the same way in age, so no cycle can form; and a
# restarted transaction keeps its original timestamp, so it grows older and eventually
# wins. Spanner avoids deadlocks among its read-write transactions with wound-wait
# [Corbett et al. 2012], which orders them by age (when each started), not by the commit
# timestamps TrueTime assigns at the end. Whichever scheme you use, a victim must be aborted
# *before* it prepares: once a transaction has voted YES, aborting it is no longer the
# participant's choice, so a wounded transaction that has already prepared is allowed to
# finish, and the older one waits for it.

# %% [markdown]
# ### Hands-on: a deadlock no site can see
#
# Three sites each report their local wait-for edges. No local graph has a cycle, but their
# union does. The left panels are the sites' views, the right one the global graph with the
# cycle in red. `is_cycle(graph, cycle)` tells whether each transaction of `cycle` waits
# for the next in `graph`, the last for the first: the cycle read off the picture is one of
# the global graph, and of no single site's graph. Finding it by program is the exercise
# at the end of this resource.

# %%
from dtcourse.lessons.deadlock import global_graph, is_cycle
from dtcourse.pictures.precedence import draw_precedence

sites = {
    "A": [("T1", "T2")],
    "B": [("T2", "T3"), ("T4", "T3")],
    "C": [("T3", "T1")],
}


def wait_for_graph(edges):
    """The nodes and edges to draw: the picture draws what it is given."""
    graph = global_graph({"all": edges})
    return sorted(graph), [(a, b) for a, targets in graph.items() for b in targets]


fig, axes = plt.subplots(1, 4, figsize=(15, 3.8))
for ax, (site, edges) in zip(axes, sites.items()):
    draw_precedence(ax, *wait_for_graph(edges), title=f"site {site}")
cycle = ("T1", "T2", "T3")
draw_precedence(axes[3], *wait_for_graph([e for edges in sites.values() for e in edges]),
                cycle=cycle, title="global wait-for graph: cycle T1 → T2 → T3 → T1")
plt.show()
for site, edges in sites.items():
    print(f"site {site} sees the cycle: {is_cycle(global_graph({site: edges}), cycle)}")
print(f"the global graph has it: {is_cycle(global_graph(sites), cycle)}")

# %% [markdown]
# ### Clocks: a case study
#
# Some distributed databases avoid locks for reads by giving each transaction a timestamp
# and reading a snapshot at that timestamp. That needs clocks that agree well enough, and
# clocks on commodity machines drift. Jepsen's 2017 analysis of CockroachDB is a good case
# study [Kingsbury 2017]. CockroachDB, loosely modelled on Spanner, runs two-phase commit
# across Raft consensus groups and uses hybrid logical clocks for transaction timestamps;
# unlike Spanner's TrueTime it has no tight bound on clock error, so it relies on the
# clocks of its nodes staying within a configured maximum offset. Jepsen's tests combined
# network partitions, process crashes and deliberately skewed clocks, and found multiple
# serializability violations in the beta versions tested; the fixes shipped in later betas.
# The analysis is worth reading as a model of how distributed transaction bugs hide: each
# component (Raft, the commit protocol, the clock) can look correct in isolation, and the
# violation appears only in particular interleavings under faults. The lesson for us: every
# timing assumption a protocol makes is a failure mode, and the only way to find such bugs is
# to test the combinations, which is exactly what the simulator and model checker in this
# course do.

# %% [markdown]
# ### The cost: latency and contention
#
# Let d be the one-way network delay between coordinator and participants and f the time of
# a forced log write. From the two-phase commit reading, the client-visible commit latency of
# 2PC is about **2d + 2f** (PREPARE out, forced prepared record, YES back, forced commit
# record), and each participant holds its locks for at least **2d + 3f** after PREPARE
# reaches it (its forced prepared record, YES back, the coordinator's forced commit record,
# the COMMIT message, and its own forced commit record), on top of the transaction's own
# work.
# Illustrative numbers, assuming f = 1 ms:
#
# | deployment | d | commit latency 2d + 2f | lock hold 2d + 3f | max commits/s on one hot row (1 / hold) |
# |---|---|---|---|---|
# | same data centre | 0.25 ms | 2.5 ms | 3.5 ms | about 286 |
# | across regions | 40 ms | 82 ms | 83 ms | about 12 |
#
# The last column is the important one. If every transaction updates the same row (a
# counter, a popular product's stock), those transactions are serialized by its lock, so
# throughput on that row can never exceed one over the lock-hold time, however many machines
# you add. Distributed commit stretches the hold time, and under contention that bound, not
# CPU or disk, decides throughput. This is why so much optimization work targets the number
# of round trips and forced writes (Phase 3) and why contended workloads are often
# redesigned instead.

# %%
# The table as a curve: a participant holds its locks for 2d + 3f under 2PC.
import numpy as np

from dtcourse.pictures.figure import CourseFigure

forced_write = 0.001  # f: one forced log write, in seconds
one_way = np.logspace(-4.3, -1.3, 60)  # d: 50 microseconds to 50 ms
hold_2pc = 2 * one_way + 3 * forced_write
figure = CourseFigure(figsize=(6.5, 3.6))
axes = figure.add_subplot()
axes.loglog(one_way * 1000, 1 / hold_2pc, label="2PC: lock held 2d + 3f")
axes.axhline(1 / forced_write, color="grey", linestyle="--", label="one database: f")
axes.set_xlabel("one-way network delay d (ms)")
axes.set_ylabel("commits/s on one hot row (max)")
axes.set_title("A hot row under 2PC: the lock-hold time caps throughput")
axes.legend()
figure.tight_layout()
figure

# %% [markdown]
# ### The case for avoiding them
#
# Two short, influential essays argue that many systems should not use distributed
# transactions at all.
#
# **Pat Helland, "Life beyond Distributed Transactions: an Apostate's Opinion" (2007).**
# Helland, who had built transaction systems for decades, argues that applications meant to
# scale almost without limit cannot assume atomic transactions across machines [Helland
# 2007]. Instead, data is organised into **entities**, each with a unique key and living on
# one machine at a time; a transaction may touch only one entity. Entities talk through
# **messages** that are delivered at least once, so every message handler must be
# **idempotent**, and each entity keeps per-partner state (Helland calls these
# *activities*) to remember what it has seen. Agreement across entities becomes a business
# workflow: tentative operations followed by confirmation or cancellation.
#
# **Gregor Hohpe, "Your Coffee Shop Doesn't Use Two-Phase Commit" (2005).** A coffee shop
# takes your order and payment at the till, writes your name on a cup, and moves on to the
# next customer while baristas make drinks asynchronously, sometimes out of order [Hohpe
# 2005]. Holding the cashier until your drink is ready, which is what a 2PC across "till"
# and "barista" would do, would wreck throughput. When something goes wrong, the shop uses
# cheap remedies: **write off** the error (discard a wrong drink), **retry** (make it again),
# or **compensate** (refund). Correlation (your name on the cup) replaces a transaction
# identifier.
#
# Both essays trade atomicity for availability and throughput and move the handling of
# partial failure into the application, where it can be done with business knowledge. That
# is the bridge to sagas, outboxes and idempotent consumers in Phase 3.

# %% [markdown]
# ### The exercises
#
# **Coordinator recovery on a real database.** A coordinator drives participants that are
# real databases (SQLite with a durable prepared state, or PostgreSQL with
# `PREPARE TRANSACTION`) and keeps a durable decision log. You write its recovery step: for
# each in-doubt branch the participants report (PostgreSQL's `pg_prepared_xacts`, or
# psycopg's `tpc_recover()`), look its transaction up in the decision log, commit the ones
# with a commit record, and roll back the rest under the **presumed abort** rule (no record
# means no commit decision was ever made, so abort is safe). The grader crashes the
# coordinator's process at arbitrary points and checks that no money is created or
# destroyed, no acknowledged transfer is lost and no prepared transaction is left behind.
#
# **Distributed deadlock detection** (challenge). Given the local wait-for graphs of several
# sites, build the global wait-for graph, find a cycle, and choose a victim to break it.
# Afterwards, consider what changes if the local graphs were captured at different moments:
# a detector can then see a cycle that never existed at any single instant (a phantom
# deadlock).

# %% [markdown]
# ### Exercise `p2.recovery`: the coordinator's recovery step on a real database
#
# The coordinator in `dtcourse.db` runs 2PC with **presumed abort** over SQLite
# participants and a durable decision log. After a crash, `Coordinator.recover(step)`
# reads the commit records still in its log, asks every participant for its in-doubt
# branches, and calls your `step(log, in_doubt)`:
#
# - `log`: a list of `LogEntry(gtrid, participants, decision)`, the commit records;
# - `in_doubt`: a list of `InDoubt(participant, gtrid)`, every branch that voted yes and
#   waits;
# - return one `Resolve(participant, gtrid, commit)` per in-doubt branch: `commit=True` to
#   commit it, `False` to roll it back.
#
# The grader checks the rule on small cases, then runs the **crash torture**: a real child
# process runs bank transfers over SQLite and is killed with SIGKILL at named points of the
# protocol and at random moments; after each crash your step recovers, and the bank must
# keep its total balance, lose no acknowledged transfer and leave nothing in doubt.

# %% dtcourse={"solution": "p2.recovery"}
from dtcourse.db import InDoubt, LogEntry, Resolve

### BEGIN SOLUTION
def recovery_step(log, in_doubt):
    committed = {entry.gtrid for entry in log if entry.decision == "commit"}
    return [Resolve(d.participant, d.gtrid, d.gtrid in committed) for d in in_doubt]
### END SOLUTION

# %%
dtcourse.check("p2.recovery", recovery_step)

# %% dtcourse={"test": "p2.recovery", "points": 4}
from dtcourse.runtime.checks import check_part

check_part("p2.recovery", "rules", recovery_step)
### BEGIN HIDDEN TESTS
from dtcourse_instructor.grader import grade_part

grade_part("p2.recovery", "rules", recovery_step)
grade_part("p2.recovery", "rules", recovery_step, seed=41, cases=20)
### END HIDDEN TESTS

# %% dtcourse={"test": "p2.recovery", "points": 6}
from dtcourse.runtime.checks import check_part

check_part("p2.recovery", "torture", recovery_step)
### BEGIN HIDDEN TESTS
from dtcourse_instructor.grader import grade_part

grade_part("p2.recovery", "torture", recovery_step)
grade_part("p2.recovery", "torture", recovery_step, seed=43, transfers=8, participants=3)
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise `p2.deadlock` (challenge): distributed deadlock detection
#
# Write `find_deadlock(local, started)`: `local` maps each site to its list of wait-for
# edges `(waiter, holder)`; `started` maps each transaction to its start time. Build the
# global wait-for graph, find a cycle in it (any one), and choose the victim by
# **youngest dies**: the transaction of the cycle with the latest start time. Return
# `Deadlock(cycle, victim)` (from `dtcourse.lessons.deadlock`), where `cycle` lists the
# transactions in wait order (each waits for the next, the last for the first), or `None`
# when there is no deadlock.

# %% dtcourse={"solution": "p2.deadlock"}
from dtcourse.lessons.deadlock import Deadlock

### BEGIN SOLUTION
def find_deadlock(local, started):
    graph = {}
    for edges in local.values():
        for waiter, holder in edges:
            graph.setdefault(waiter, set()).add(holder)
            graph.setdefault(holder, set())
    state = {}

    def visit(node, path):
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return path[path.index(nxt):]
            if nxt not in state:
                found = visit(nxt, path)
                if found:
                    return found
        path.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node, [])
            if cycle:
                return Deadlock(tuple(cycle), max(cycle, key=lambda t: (started[t], t)))
    return None
### END SOLUTION

# %%
dtcourse.check("p2.deadlock", find_deadlock)

# %% dtcourse={"test": "p2.deadlock", "points": 1}
from dtcourse.runtime.checks import check_part

check_part("p2.deadlock", "none", find_deadlock)
### BEGIN HIDDEN TESTS
from dtcourse_instructor.grader import grade_part

grade_part("p2.deadlock", "none", find_deadlock)
grade_part("p2.deadlock", "none", find_deadlock, seed=51, count=8, size=9)
### END HIDDEN TESTS

# %% dtcourse={"test": "p2.deadlock", "points": 2}
from dtcourse.runtime.checks import check_part

check_part("p2.deadlock", "cycle", find_deadlock)
### BEGIN HIDDEN TESTS
from dtcourse_instructor.grader import grade_part

grade_part("p2.deadlock", "cycle", find_deadlock)
grade_part("p2.deadlock", "cycle", find_deadlock, seed=52, count=8, size=9)
### END HIDDEN TESTS

# %% dtcourse={"test": "p2.deadlock", "points": 2}
from dtcourse.runtime.checks import check_part

check_part("p2.deadlock", "victim", find_deadlock)
### BEGIN HIDDEN TESTS
from dtcourse_instructor.grader import grade_part

grade_part("p2.deadlock", "victim", find_deadlock)
grade_part("p2.deadlock", "victim", find_deadlock, seed=53, count=8, size=9)
### END HIDDEN TESTS

# %% [markdown]
# ### Sources
#
# - Kleppmann, M. *Designing Data-Intensive Applications*, O'Reilly, 2017; ch. 9, "Distributed Transactions in Practice". https://dataintensive.net/
# - PostgreSQL Global Development Group. "PREPARE TRANSACTION", PostgreSQL documentation, n.d. https://www.postgresql.org/docs/current/sql-prepare-transaction.html
# - PostgreSQL Global Development Group. "Two-Phase Transactions", PostgreSQL documentation, n.d. https://www.postgresql.org/docs/current/two-phase.html
# - PostgreSQL Global Development Group. "max_prepared_transactions", PostgreSQL documentation, n.d. https://www.postgresql.org/docs/current/runtime-config-resource.html#GUC-MAX-PREPARED-TRANSACTIONS
# - X/Open Company Ltd. *Distributed Transaction Processing: The XA Specification*, 1991. https://pubs.opengroup.org/onlinepubs/009680699/toc.pdf
# - Corbett, J. C. et al. "Spanner: Google's Globally-Distributed Database", OSDI, 2012. https://research.google/pubs/spanner-googles-globally-distributed-database-2/
# - Kingsbury, K. "Jepsen: CockroachDB beta-20160829", 2017. https://jepsen.io/analyses/cockroachdb-beta-20160829
# - Bernstein, P. A., Hadzilacos, V., Goodman, N. *Concurrency Control and Recovery in Database Systems*, Addison-Wesley, 1987, ch. 3 "Two Phase Locking" (deadlock prevention). https://www.microsoft.com/en-us/research/people/philbe/book/
# - Helland, P. "Life beyond Distributed Transactions: an Apostate's Opinion", CIDR, 2007. https://www.cidrdb.org/cidr2007/papers/cidr07p15.pdf
# - Hohpe, G. "Your Coffee Shop Doesn't Use Two-Phase Commit", *IEEE Software* 22(2), 2005. http://www.martinfowler.com/ieeeSoftware/coffeeShop.pdf

# %% [markdown]
# ## Completion checklist
#
# The course's checklist, kept in step with your progress: a phase is complete when its
# readings are marked as read and its exercises pass `dtcourse.check`.

# %%
from dtcourse.runtime.widgets import checklist

checklist()
