"""One contract, every backend (see IQueueBackend)."""
import threading
import time

from zope.interface.verify import verifyObject

from wsgi_taskqueue.interfaces import IQueueBackend
from wsgi_taskqueue.status import Report

#: For messages that are not tasks: the status log ignores them.
REPORT = Report('0', 1, '200 OK', 0.001)


def promoted(queue, *messages, batch='b1'):
    queue.stage(batch, list(messages))
    queue.promote(batch)


def test_backends_provide_the_interface(queue):
    assert verifyObject(IQueueBackend, queue)


def test_staged_batches_are_invisible_until_promoted(queue):
    queue.stage('b1', [b'1', b'2'])
    assert queue.reserve('c', 10, 0) == []
    assert queue.counts()['staged'] == 1
    queue.promote('b1')
    assert queue.reserve('c', 10, 0) == [b'1', b'2']
    assert queue.counts()['staged'] == 0


def test_discarded_batches_never_appear(queue):
    queue.stage('b1', [b'1'])
    queue.discard('b1')
    queue.promote('b1')  # after-commit of a batch that is gone: no error
    assert queue.reserve('c', 10, 0) == []
    assert queue.counts()['staged'] == 0


def test_batches_keep_their_order_and_queue_behind_earlier_ones(queue):
    promoted(queue, b'1', b'2', batch='b1')
    promoted(queue, b'3', b'4', batch='b2')
    assert queue.reserve('c', 3, 0) == [b'1', b'2', b'3']
    assert queue.reserve('c', 3, 0) == [b'4']


def test_large_batches_are_promoted_whole(queue):
    messages = [str(n).encode() for n in range(2500)]
    promoted(queue, *messages)
    assert queue.reserve('c', 3000, 0) == messages


def test_reserved_messages_stay_in_the_processing_list_until_acked(queue):
    promoted(queue, b'1', b'2')
    queue.reserve('c', 2, 0)
    assert queue.counts()['processing'] == {'c': 2}
    queue.ack('c', [(b'1', REPORT)])
    assert queue.counts()['processing'] == {'c': 1}
    queue.ack('c', [(b'2', REPORT)])
    assert queue.counts()['processing'] == {}


def test_leftovers_are_requeued_ahead_of_pending_in_their_order(queue):
    promoted(queue, b'1', b'2', b'3')
    assert queue.reserve('c', 2, 0) == [b'1', b'2']
    assert queue.requeue_processing('c') == (2, 0)
    assert queue.requeue_processing('c') == (0, 0)
    assert queue.reserve('other', 3, 0) == [b'1', b'2', b'3']


def test_reserve_waits_for_a_message(queue):
    threading.Timer(0.2, promoted, (queue, b'late')).start()
    started = time.monotonic()
    assert queue.reserve('c', 1, 5) == [b'late']
    assert time.monotonic() - started < 4


def test_reserve_gives_up_after_its_timeout(queue):
    started = time.monotonic()
    assert queue.reserve('c', 1, 0.3) == []
    assert time.monotonic() - started >= 0.25


def test_interrupt_ends_a_waiting_reserve(queue):
    result = []
    waiter = threading.Thread(
        target=lambda: result.append(queue.reserve('c', 1, 30)))
    waiter.start()
    deadline = time.monotonic() + 5
    while waiter.is_alive() and time.monotonic() < deadline:
        queue.interrupt('c')
        waiter.join(0.05)
    assert not waiter.is_alive()
    assert result == [[]]


def test_retried_messages_come_back_when_due(queue):
    promoted(queue, b'first')
    queue.reserve('c', 1, 0)
    due = time.time() + 0.3
    queue.retry('c', b'first', b'first, attempt 2', due, REPORT)
    assert queue.counts()['delayed'] == 1
    assert queue.counts()['processing'] == {}
    early = queue.reserve('c', 1, 0)
    # A loaded machine may get here after the due time: what a reserve
    # found must have been due when it returned.
    assert early == [] or time.time() >= due
    assert (early or queue.reserve('c', 1, 5)) == [b'first, attempt 2']
    assert queue.counts()['delayed'] == 0


def test_due_retries_go_ahead_of_pending_messages(queue):
    promoted(queue, b'a', b'b')
    queue.reserve('c', 1, 0)
    queue.retry('c', b'a', b'a2', time.time() - 1, REPORT)
    assert queue.reserve('c', 2, 0) == [b'a2', b'b']


def test_buried_messages_are_dead_letters_until_requeued(queue):
    promoted(queue, b'poison', b'other')
    queue.reserve('c', 2, 0)
    queue.bury('c', b'poison', b'record 1')
    queue.bury('c', b'other', b'record 2')
    assert queue.counts()['dead'] == 2
    assert queue.counts()['processing'] == {}
    assert queue.dead_letters() == [b'record 2', b'record 1']
    assert queue.dead_letters(0, 0) == [b'record 2']
    assert queue.requeue_dead(b'record 1', b'poison again')
    assert not queue.requeue_dead(b'record 1', b'poison again')
    assert queue.reserve('c', 5, 0) == [b'poison again']
    assert queue.purge_dead() == 1
    assert queue.counts()['dead'] == 0


def test_consumers_are_isolated(queue):
    promoted(queue, b'1', b'2')
    queue.reserve('a', 1, 0)
    queue.reserve('b', 1, 0)
    assert queue.counts()['processing'] == {'a': 1, 'b': 1}
    assert queue.requeue_processing('a') == (1, 0)
    assert queue.counts()['processing'] == {'b': 1}


def test_a_name_is_leased_to_one_token_at_a_time(queue):
    assert queue.acquire('w', 'token-1', 30)
    assert queue.acquire('w', 'token-1', 30)  # renewal
    assert not queue.acquire('w', 'token-2', 30)
    queue.release('w', 'token-2')  # not the holder: no effect
    assert not queue.acquire('w', 'token-2', 30)
    queue.release('w', 'token-1')
    assert queue.acquire('w', 'token-2', 30)


def test_an_expired_lease_can_be_taken_over(queue):
    assert queue.acquire('w', 'token-1', 0.1)
    time.sleep(0.15)  # let the lease run out: the time is the point
    assert queue.acquire('w', 'token-2', 30)


def test_the_sweep_requeues_only_consumers_without_a_live_lease(queue):
    promoted(queue, b'1', b'2', b'3')
    queue.acquire('alive', 't1', 30)
    queue.reserve('alive', 1, 0)
    queue.acquire('dead', 't2', 30)
    queue.reserve('dead', 2, 0)
    queue.release('dead', 't2')
    report = queue.sweep(grace=60)
    assert report == {'consumers': ['dead'], 'requeued': 2, 'dead': 0,
                      'batches': []}
    assert queue.counts()['processing'] == {'alive': 1}
    assert queue.reserve('other', 5, 0) == [b'2', b'3']


def test_a_task_that_keeps_killing_its_consumer_is_dead_lettered(queue):
    codec = queue.codec
    from test_task import make_task
    message = codec.encode(make_task())
    promoted(queue, message)
    for _ in range(2):
        assert queue.reserve('w', 1, 0) == [message]
        assert queue.requeue_processing('w', max_deliveries=3) == (1, 0)
    queue.reserve('w', 1, 0)
    assert queue.requeue_processing('w', max_deliveries=3) == (0, 1)
    [letter] = queue.dead_letters()
    from wsgi_taskqueue.deadletter import DeadLetter
    letter = DeadLetter.decode(letter)
    assert letter.task_id == codec.decode(message).id
    assert letter.url == '/view?a=1'
    assert 'delivered 3 times without finishing' in letter.error
    # Kept without the cookie it carried, signed anew: requeueable.
    kept = codec.decode(letter.message)
    assert kept == codec.decode(message).without_credentials()
    assert 'HTTP_COOKIE' in codec.decode(message).environ
    assert queue.task_status(kept.id)['state'] == 'dead'


def test_the_sweep_promotes_staged_batches_older_than_the_grace(queue):
    queue.stage('orphan', [b'1'])
    assert queue.sweep(grace=60)['batches'] == []
    time.sleep(0.1)  # age the batch past a tiny grace: the time is the point
    assert queue.sweep(grace=0.05)['batches'] == ['orphan']
    assert queue.reserve('c', 5, 0) == [b'1']
    assert queue.counts()['staged'] == 0


def task_message(queue, **overrides):
    from test_task import make_task
    task = make_task(queue=queue.name, **overrides)
    return task, queue.codec.encode(task)


def acked(queue, task, message, slot='c'):
    """``message`` (of ``task``) acknowledged by ``slot``: done."""
    queue.ack(slot, [(message, Report(task.id, 1, '200 OK', 0.01))])


def buried(queue, task, message, status='500 Oops', slot='c'):
    """``message`` (of ``task``) buried by ``slot``: dead, with ``status``."""
    queue.bury(slot, message, queue.dead_letter(message, task, status, '', 1),
               Report(task.id, 1, status, 0.01))


def test_the_status_log_follows_a_task_through_its_life(queue):
    task, message = task_message(queue)
    queue.stage('b1', [message])
    assert queue.task_status(task.id)['state'] == 'staged'
    queue.promote('b1')
    status = queue.task_status(task.id)
    assert (status['state'], status['path'], status['method'],
            status['user'], status['attempt']) == (
        'queued', '/view', 'POST', 'alice', 1)
    assert queue.reserve('w1', 1, 0) == [message]
    status = queue.task_status(task.id)
    assert (status['state'], status['consumer']) == ('running', 'w1')
    retried = queue.codec.encode(task.next_attempt())
    due = time.time() - 1
    queue.retry('w1', message, retried,  due,
                Report(task.id, 1, '503 Busy', 0.25))
    status = queue.task_status(task.id)
    assert (status['state'], status['next_attempt']) == ('retrying', due)
    assert queue.reserve('w2', 1, 0) == [retried]
    assert queue.task_status(task.id)['attempt'] == 2
    queue.ack('w2', [(retried, Report(task.id, 2, '200 OK', 0.5))])
    status = queue.task_status(task.id)
    assert (status['state'], status['status']) == ('done', '200 OK')
    assert [(a['attempt'], a['status'], a['duration_ms'])
            for a in status['attempts']] == [(1, '503 Busy', 250.0),
                                             (2, '200 OK', 500.0)]
    assert status['queue'] == queue.name


def test_dead_tasks_are_logged_dead_and_requeued_ones_queued(queue):
    task, message = task_message(queue)
    promoted(queue, message)
    queue.reserve('w', 1, 0)
    queue.bury('w', message, b'record', Report(task.id, 1, '404 Gone', 0))
    assert queue.task_status(task.id)['state'] == 'dead'
    assert queue.requeue_dead(b'record', message)
    assert queue.task_status(task.id)['state'] == 'queued'


def test_tasks_lists_the_newest_first_filtered_by_state(queue):
    tasks = [task_message(queue) for _ in range(5)]
    for number, (_, message) in enumerate(tasks):
        promoted(queue, message, batch=f'b{number}')
    queue.reserve('w', 2, 0)
    assert [s['id'] for s in queue.tasks()] == [
        task.id for task, _ in reversed(tasks)]
    assert {s['id'] for s in queue.tasks(state='running')} == {
        tasks[0][0].id, tasks[1][0].id}
    assert [s['id'] for s in queue.tasks(state='queued', start=1, count=1)] \
        == [tasks[3][0].id]


def test_unknown_tasks_have_no_status(queue):
    assert queue.task_status('0123abcd') is None


def test_throughput_counts_outcomes_per_minute(queue):
    task, message = task_message(queue)
    promoted(queue, message)
    queue.reserve('w', 1, 0)
    queue.ack('w', [(message, Report(task.id, 1, '200 OK', 0.01))])
    minutes = queue.throughput(5)
    assert len(minutes) == 5
    assert minutes[-1].get('done') == 1


def test_consumers_are_listed_with_their_heartbeat(queue):
    queue.acquire('w', 'token', 30, {'host': 'h', 'concurrency': 4})
    promoted(queue, b'1')
    queue.reserve('w', 1, 0)
    [consumer] = queue.consumers()
    assert (consumer['name'], consumer['host'], consumer['concurrency'],
            consumer['in_flight'], consumer['alive']) == ('w', 'h', 4, 1, True)
    assert 0 <= consumer['heartbeat_age'] < 5


def test_without_a_status_ttl_nothing_is_logged(queue):
    queue.status_ttl = 0
    task, message = task_message(queue)
    promoted(queue, message)
    queue.reserve('w', 1, 0)
    assert queue.task_status(task.id) is None


def test_purge_deletes_pending_and_delayed_tasks_only(queue):
    promoted(queue, b'1', b'2', b'3', b'4')
    queue.reserve('w', 2, 0)
    queue.retry('w', b'1', b'1 again', time.time() + 60, REPORT)
    queue.bury('w', b'2', b'record')
    assert queue.purge() == 3  # 3 and 4 pending, '1 again' delayed
    counts = queue.counts()
    assert (counts['pending'], counts['delayed'], counts['dead']) == (0, 0, 1)


def test_requeue_delayed_makes_waiting_retries_pending_now(queue):
    promoted(queue, b'a', b'b')
    queue.reserve('w', 1, 0)
    queue.retry('w', b'a', b'a again', time.time() + 60, REPORT)
    assert queue.requeue_delayed() == 1
    assert queue.reserve('w', 5, 0) == [b'a again', b'b']


def test_reset_forgets_everything_of_the_queue(queue):
    task, message = task_message(queue)
    promoted(queue, message, b'2', b'3')
    queue.stage('orphan', [b'4'])
    queue.acquire('w', 'token', 30)
    queue.reserve('w', 1, 0)
    queue.bury('w', message, b'record')
    queue.reset()
    assert queue.counts() == {'pending': 0, 'delayed': 0, 'dead': 0,
                              'staged': 0, 'processing': {}}
    assert queue.task_status(task.id) is None
    assert queue.consumers() == []
    assert queue.acquire('w', 'other-token', 30)


def test_retries_that_fall_due_together_run_earliest_first(queue):
    promoted(queue, b'a', b'b', b'c')
    queue.reserve('w', 2, 0)
    now = time.time()
    queue.retry('w', b'b', b'b2', now - 1, REPORT)
    queue.retry('w', b'a', b'a2', now - 2, REPORT)
    assert queue.reserve('w', 3, 0) == [b'a2', b'b2', b'c']


def test_purged_and_requeued_tasks_say_so_in_the_status_log(queue):
    (first, one), (second, two) = task_message(queue), task_message(queue)
    promoted(queue, one, two)
    queue.reserve('w', 1, 0)
    queue.retry('w', one, one, time.time() + 60, REPORT)
    assert queue.requeue_delayed() == 1
    assert queue.task_status(first.id)['state'] == 'queued'
    assert queue.purge() == 2
    assert {queue.task_status(task.id)['state']
            for task in (first, second)} == {'purged'}


def test_staged_tasks_are_listed_by_state(queue):
    task, message = task_message(queue)
    queue.stage('b1', [message])
    assert [s['id'] for s in queue.tasks(state='staged')] == [task.id]


def test_the_tasks_of_one_batch_are_listed_in_the_order_added(queue):
    added = [task_message(queue) for _ in range(3)]
    promoted(queue, *[message for _, message in added])
    assert [s['id'] for s in queue.tasks()] == [
        task.id for task, _ in reversed(added)]


def test_a_reserve_that_recovers_hands_back_what_its_slot_holds(queue):
    promoted(queue, b'1', b'2', b'3')
    # A reserve whose reply was lost: the thread never saw these two.
    queue.reserve('w#1', 2, 0)
    # Its next reserve acknowledges what it finished and recovers.
    assert queue.reserve('w#1', 3, 0, recover=True) == [b'1', b'2', b'3']
    assert queue.counts()['processing'] == {'w': 3}


def test_the_slots_of_a_consumer_are_one_consumer(queue):
    promoted(queue, b'1', b'2', b'3')
    queue.acquire('w', 'token', 30)
    queue.reserve('w#1', 1, 0)
    queue.reserve('w#2', 2, 0)
    assert queue.counts()['processing'] == {'w': 3}
    assert [c['in_flight'] for c in queue.consumers()] == [3]
    assert queue.sweep(grace=60)['consumers'] == []  # alive
    queue.release('w', 'token')
    assert queue.sweep(grace=60)['consumers'] == ['w']
    # Each slot's tasks keep their order; slots taken in parallel have none
    # between them.
    assert sorted(queue.reserve('x', 5, 0)) == [b'1', b'2', b'3']


def test_a_consumer_requeues_the_leftovers_of_all_its_slots(queue):
    promoted(queue, b'1', b'2')
    queue.reserve('w#1', 1, 0)
    queue.reserve('w#2', 1, 0)
    assert queue.requeue_processing('w') == (2, 0)
    assert sorted(queue.reserve('x', 5, 0)) == [b'1', b'2']


def test_retry_and_bury_of_a_message_no_longer_in_flight_do_nothing(queue):
    promoted(queue, b'1')
    queue.reserve('w', 1, 0)
    queue.requeue_processing('w')  # e.g. a sweep took it back
    queue.retry('w', b'1', b'1 again', time.time(), REPORT)
    queue.bury('w', b'1', b'record')
    counts = queue.counts()
    assert (counts['pending'], counts['delayed'], counts['dead']) == (1, 0, 0)


def test_the_length_of_a_queue_is_its_pending_count(queue):
    assert len(queue) == 0 and queue
    promoted(queue, b'a', b'b', b'c')
    queue.reserve('w', 1, 0)
    queue.stage('later', [b'd'])
    assert len(queue) == 2


def test_a_scheduled_task_waits_among_the_delayed_until_due(queue):
    task, message = task_message(queue, due=time.time() + 0.5)
    _, now = task_message(queue)
    promoted(queue, message, now)
    status = queue.task_status(task.id)
    assert status['state'] == 'scheduled'
    assert status['due'] == status['next_attempt'] == task.options.due
    assert queue.counts()['delayed'] == 1
    first = queue.reserve('c', 10, 0)
    assert now in first
    if message not in first:
        assert queue.reserve('c', 10, 5) == [message]
    # Reserved once due only (at once if a loaded machine got here late).
    assert time.time() >= task.options.due
    assert queue.task_status(task.id)['state'] == 'running'


def test_a_task_due_already_is_pending_at_once(queue):
    task, message = task_message(queue, due=time.time() - 1)
    promoted(queue, message)
    assert queue.task_status(task.id)['state'] == 'queued'
    assert queue.reserve('c', 10, 0) == [message]


def test_a_label_is_kept_in_the_status_record(queue):
    task, message = task_message(queue, label='send_mailing')
    plain, other = task_message(queue)
    promoted(queue, message, other)
    assert queue.task_status(task.id)['label'] == 'send_mailing'
    assert queue.task_status(plain.id)['label'] is None
    queue.reserve('c', 10, 0)
    assert queue.task_status(task.id)['label'] == 'send_mailing'


def test_cancel_removes_a_pending_or_delayed_task_but_not_a_running_one(
        queue):
    (pending, first), (scheduled, second), (running, third) = [
        task_message(queue), task_message(queue, due=time.time() + 60),
        task_message(queue)]
    promoted(queue, third, first, second)
    assert queue.reserve('c', 1, 0) == [third]
    assert queue.cancel(pending.id) == 'cancelled'
    assert queue.cancel(scheduled.id) == 'cancelled'
    assert queue.cancel(running.id) == 'running'
    assert queue.cancel(pending.id) is None
    assert queue.cancel('f' * 32) is None
    assert queue.task_status(pending.id)['state'] == 'cancelled'
    assert queue.task_status(scheduled.id)['state'] == 'cancelled'
    assert queue.task_status(running.id)['state'] == 'running'
    counts = queue.counts()
    assert (counts['pending'], counts['delayed']) == (0, 0)
    assert queue.reserve('c', 10, 0) == []


def test_cancel_removes_a_task_waiting_for_a_retry(queue):
    task, message = task_message(queue)
    promoted(queue, message)
    queue.reserve('c', 1, 0)
    queue.retry('c', message, message, time.time() + 60,
                Report(task.id, 1, '503 Service Unavailable', 0.001))
    assert queue.cancel(task.id) == 'cancelled'
    assert queue.counts()['delayed'] == 0
    assert queue.task_status(task.id)['state'] == 'cancelled'


def test_a_consumer_takes_the_highest_priority_first_fifo_within_one(queue):
    priorities = [5, 9, 0, 9, None, 3, 7, 0]
    tasks = [task_message(queue, priority=priority)
             for priority in priorities]
    promoted(queue, *[message for _, message in tasks[:4]], batch='b1')
    promoted(queue, *[message for _, message in tasks[4:]], batch='b2')
    order = sorted(range(len(tasks)), key=lambda i: (
        -(priorities[i] if priorities[i] is not None else 5), i))
    assert queue.counts()['pending'] == len(tasks)
    taken = [queue.reserve('c', 1, 0) for _ in tasks]
    assert taken == [[tasks[i][1]] for i in order]
    assert queue.reserve('c', 1, 0) == []


def test_a_reservation_of_many_takes_them_in_priority_order(queue):
    low, high, middle = (task_message(queue, priority=priority)[1]
                         for priority in (1, 8, None))
    promoted(queue, low, high, middle)
    assert queue.reserve('c', 10, 0) == [high, middle, low]


def test_a_requeued_or_cancelled_task_keeps_its_priority(queue):
    (task, high), (_, low) = (task_message(queue, priority=priority)
                              for priority in (9, 1))
    (cancelled, other) = task_message(queue, priority=9)
    promoted(queue, low, high, other)
    assert queue.cancel(cancelled.id) == 'cancelled'
    assert queue.reserve('c', 1, 0) == [high]
    queue.requeue_processing('c')
    assert queue.reserve('c', 2, 0) == [high, low]


def test_consumers_waiting_on_an_empty_queue_wake_for_tasks_of_any_priority(
        queue):
    results = {}
    waiters = [threading.Thread(target=lambda name=name: results.setdefault(
        name, queue.reserve(name, 1, 120))) for name in ('c1', 'c2', 'c3')]
    for waiter in waiters:
        waiter.start()
    wait_for_waiters(queue)
    messages = [task_message(queue, priority=priority)[1]
                for priority in (9, 1, 7)]
    promoted(queue, *messages)
    joined(waiters)
    assert sorted(message for [message] in results.values()) == sorted(
        messages)
    assert queue.counts()['pending'] == 0
    assert queue.reserve('c', 10, 0) == []


def test_a_waiting_consumer_wakes_for_a_requeued_task_of_any_priority(
        queue):
    _, message = task_message(queue, priority=2, due=time.time() + 3600)
    promoted(queue, message)
    result = []
    waiter = threading.Thread(
        target=lambda: result.append(queue.reserve('c', 1, 120)))
    waiter.start()
    wait_for_waiters(queue, 1)
    assert queue.requeue_delayed() == 1
    joined([waiter])
    assert result == [[message]]
    assert queue.counts()['pending'] == 0


def joined(waiters, within=30):
    """Assert that ``waiters`` end within ``within`` seconds in all: well
    before the timeout of the reservations they wait in."""
    deadline = time.monotonic() + within
    for waiter in waiters:
        waiter.join(max(0.0, deadline - time.monotonic()))
    assert not any(waiter.is_alive() for waiter in waiters)


def wait_for_waiters(queue, count=3):
    """On Redis, until ``count`` consumers block in BLMOVE (elsewhere a
    waiting consumer shows nowhere: the test holds all the same)."""
    if not hasattr(queue, 'client'):
        return
    deadline = time.monotonic() + 10
    while sum(client['cmd'] == 'blmove' for client in
              queue.client.client_list()) < count:
        assert time.monotonic() < deadline, 'consumers never blocked'
        time.sleep(0.01)


def test_a_name_held_by_a_task_drops_the_next_task_of_that_name(queue):
    (first, one), (second, two), (_, other) = (
        task_message(queue, name=name)
        for name in ('invoice-42', 'invoice-42', 'invoice-43'))
    promoted(queue, one, batch='b1')
    promoted(queue, two, other, batch='b2')
    assert queue.reserve('c', 10, 0) == [one, other]
    assert queue.task_status(first.id)['name'] == 'invoice-42'
    assert queue.task_status(second.id) is None
    # Held after its task finished, too (App Engine's tombstones).
    queue.ack('c', [(one, Report(first.id, 1, '200 OK', 0.1))])
    assert queue.task_status(first.id)['state'] == 'done'
    promoted(queue, task_message(queue, name='invoice-42')[1], batch='b3')
    assert queue.reserve('c', 10, 0) == []


def test_a_discarded_batch_releases_its_names(queue):
    _, staged = task_message(queue, name='report')
    queue.stage('b1', [staged])
    queue.discard('b1')
    _, again = task_message(queue, name='report')
    promoted(queue, again, batch='b2')
    assert queue.reserve('c', 10, 0) == [again]


def test_a_stage_sent_again_keeps_its_names(queue):
    # Its task holds the name already: the claim succeeds again.
    _, message = task_message(queue, name='report')
    queue.stage('b1', [message])
    queue.stage('b1', [message])
    queue.promote('b1')
    assert message in queue.reserve('c', 10, 0)


def test_a_name_is_free_again_after_name_ttl(queue):
    queue.name_ttl = 1
    _, first = task_message(queue, name='hourly')
    promoted(queue, first, batch='b0')
    assert queue.reserve('c', 10, 0) == [first]
    deadline = time.monotonic() + 15
    for attempt in range(1000):
        _, later = task_message(queue, name='hourly')
        promoted(queue, later, batch=f'b{attempt + 1}')
        if queue.reserve('c', 10, 0) == [later]:
            break
        assert time.monotonic() < deadline, 'the name was never free again'
        time.sleep(0.1)


def test_of_twenty_concurrent_stages_of_one_name_one_task_is_queued(queue):
    messages = [task_message(queue, name='once')[1] for _ in range(20)]
    barrier = threading.Barrier(len(messages))
    errors = []

    def stage(number, message):
        barrier.wait()
        try:
            promoted(queue, message, batch=f'b{number}')
        except Exception as exc:  # noqa: BLE001 - every one is a failure
            errors.append(exc)
    threads = [threading.Thread(target=stage, args=pair)
               for pair in enumerate(messages)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    taken = queue.reserve('c', 100, 0)
    assert len(taken) == 1 and taken[0] in messages
    assert queue.counts()['pending'] == 0


def test_an_ack_of_a_task_the_sweep_took_back_records_nothing(any_queue):
    """Its consumer's lease ran out and the sweep requeued it: the task is
    another consumer's now, and its outcome that run's.  The late ack
    neither marks it done, nor counts it, nor releases what waits for it
    (nor makes its next delivery look like a replay)."""
    queue = any_queue
    first, message = task_message(queue)
    second, waiting = task_message(queue, after=[first.id])
    promoted(queue, message, waiting)
    queue.acquire('lapsed', 'token', 30)
    assert queue.reserve('lapsed#1', 1, 0) == [message]
    queue.release('lapsed', 'token')
    assert queue.sweep(grace=60)['requeued'] == 1
    queue.ack('lapsed#1', [(message, Report(first.id, 1, '200 OK', 0.01))])
    assert queue.task_status(first.id)['state'] == 'queued'
    assert queue.task_status(second.id)['state'] == 'waiting'
    assert not any(minute.get('done') for minute in queue.throughput(5))
    assert queue.reserve('other#1', 10, 0) == [message]
