"""The types of the ``wsgi-taskqueue`` command's arguments: each parses
one value and refuses a bad one with a message naming it, so that argparse
reports it as a usage error before any queue is touched."""
from __future__ import annotations

import argparse

from .errors import InvalidTask
from .task import TASK_ID


def task_id(text: str) -> str:
    if not TASK_ID.fullmatch(text):
        raise argparse.ArgumentTypeError(f'not a task id: {text!r}')
    return text


def checked(parse):
    """``parse`` as an argparse type: its InvalidTask is a usage error."""
    def parse_checked(text: str):
        try:
            return parse(text)
        except InvalidTask as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    parse_checked.__name__ = parse.__name__
    return parse_checked


def positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f'must be greater than 0: {text}')
    return value


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'must be at least 1: {text}')
    return value


def natural_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f'must be at least 0: {text}')
    return value


def byte_size(text: str) -> int:
    units = {'K': 1024, 'M': 1024 ** 2, 'G': 1024 ** 3}
    number, unit = text.upper(), 1
    if number[-1:] in units:
        number, unit = number[:-1], units[number[-1]]
    try:
        return positive_int(number) * unit
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'not a size in bytes: {text!r} (e.g. 500M)') from None


def key_value(text: str) -> tuple[str, str]:
    key, equals, value = text.partition('=')
    if not equals or not key:
        raise argparse.ArgumentTypeError(f'expected KEY=VALUE: {text!r}')
    return key, value


def header(text: str) -> tuple[str, str]:
    name, colon, value = text.partition(':')
    if not colon or not name.strip():
        raise argparse.ArgumentTypeError(f"expected 'Name: value': {text!r}")
    return name.strip(), value.strip()
