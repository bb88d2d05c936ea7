"""What a finished transaction still owes the backend, retried in the
background."""
import threading

from wsgi_taskqueue.followup import FollowUps


def test_an_operation_that_keeps_failing_does_not_hold_up_the_others():
    follow_ups = FollowUps()
    done = threading.Event()
    calls = []

    def never():
        calls.append('never')
        raise ConnectionError('that backend stays away')

    follow_ups.add('owed to a backend that stays away', never)
    follow_ups.add('owed to a backend that is back', done.set)
    assert done.wait(10)
    assert not follow_ups.wait(0.2)  # the first is still owed
    assert calls and set(calls) == {'never'}


def test_it_is_idle_once_everything_owed_went_through():
    follow_ups = FollowUps()
    attempts = []

    def twice():
        attempts.append(1)
        if len(attempts) < 2:
            raise ConnectionError('not yet')

    follow_ups.add('owed', twice)
    assert follow_ups.wait(10)
    assert len(attempts) == 2
