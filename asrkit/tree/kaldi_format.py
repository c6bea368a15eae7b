"""Kaldi's binary ``ContextDependency`` layout (a ``tree`` file's bytes) for Python :class:`ContextTree` s.

Layout (Kaldi tree/context-dep.cc, tree/event-map.cc; base/io-funcs): every token is followed by a space;
an int32 is the byte 0x04 then 4 little-endian bytes; an unsigned 32-bit value is 0xfc then 4 bytes; an
integer set (``ConstIntegerSet::Write``) is 0x04, a raw int32 count and the raw int32 values.

    ContextDependency <N> <P> ToPdf <event map> EndContextDependency
    CE <answer> | NULL | TE <key> <size:uint32> ( <size maps> ) | SE <key> <yes-set> { <yes> <no> }

This module turns a Python :class:`ContextTree` into those bytes and back; :func:`to_kaldi` /
:func:`kaldi_to_tree` convert to and from ``kaldi_hmm_gmm.ContextDependency``, the tree type of every
other layer. Tree *files* are read and written as ``ContextDependency`` by :mod:`asrkit.hmm.tree_io`
(``read_tree``, ``write_tree``: the ``\\0B`` header, Kaldi's binary-mode mark, included).
"""
from __future__ import annotations

import struct
from typing import List

from asrkit.hmm.tree_io import BINARY_HEADER, tree_from_bytes, tree_to_bytes
from asrkit.tree.event_map import ConstantNode, ContextTree, Node, SplitNode, TableNode


def _tok(s: str) -> bytes:
    return s.encode("ascii") + b" "


def _i32(v: int) -> bytes:
    return b"\x04" + struct.pack("<i", int(v))


def _u32(v: int) -> bytes:
    return b"\xfc" + struct.pack("<I", int(v))


def event_map_bytes(root: Node) -> bytes:
    """Binary serialisation of an event map (iterative: deep trees are fine)."""
    out: List[bytes] = []
    stack: List[object] = [root]
    while stack:
        item = stack.pop()
        if isinstance(item, bytes):
            out.append(item)
        elif item is None:
            out.append(_tok("NULL"))
        elif isinstance(item, ConstantNode):
            out.append(_tok("CE") + _i32(item.pdf))
        elif isinstance(item, SplitNode):
            ys = item.yes_set
            out.append(_tok("SE") + _i32(item.key) + b"\x04" + struct.pack("<i", len(ys))
                       + struct.pack(f"<{len(ys)}i", *ys) + _tok("{"))
            stack.extend([_tok("}"), item.no, item.yes])
        elif isinstance(item, TableNode):
            out.append(_tok("TE") + _i32(item.key) + _u32(len(item.table)) + _tok("("))
            stack.append(_tok(")"))
            stack.extend(reversed(item.table))
        else:
            raise TypeError(f"not an event-map node: {item!r}")
    return b"".join(out)


def context_dependency_bytes(tree: ContextTree) -> bytes:
    """The bytes Kaldi writes for a ContextDependency in binary mode, without the ``\\0B`` header."""
    return (_tok("ContextDependency") + _i32(tree.context_width) + _i32(tree.central_position)
            + _tok("ToPdf") + event_map_bytes(tree.root) + _tok("EndContextDependency"))


class _Reader:
    def __init__(self, data: bytes, where: str) -> None:
        self.d, self.i, self.where = data, 0, where

    def fail(self, msg: str):
        raise ValueError(f"{self.where}: byte {self.i}: {msg}")

    def token(self) -> str:
        j = self.d.find(b" ", self.i)
        if j < 0:
            self.fail("expected a token")
        t = self.d[self.i:j].decode("ascii", "replace")
        self.i = j + 1
        return t

    def expect(self, t: str) -> None:
        got = self.token()
        if got != t:
            self.fail(f"expected token {t!r}, got {got!r}")

    def peek(self) -> int:
        if self.i >= len(self.d):
            self.fail("unexpected end of data")
        return self.d[self.i]

    def basic(self, marker: int, fmt: str) -> int:
        if self.i + 5 > len(self.d) or self.d[self.i] != marker:
            self.fail(f"expected an integer marked 0x{marker:02x}")
        v = struct.unpack_from(fmt, self.d, self.i + 1)[0]
        self.i += 5
        return v

    def int_set(self) -> tuple:
        if self.d[self.i] != 4:
            self.fail("expected an int32 vector")
        (n,) = struct.unpack_from("<i", self.d, self.i + 1)
        vals = struct.unpack_from(f"<{n}i", self.d, self.i + 5)
        self.i += 5 + 4 * n
        return tuple(vals)


def parse_event_map(r: _Reader) -> Node:
    """Iterative parser of one event map."""
    stack: list = []  # frames: [kind, key, extra, children]
    while True:
        t = r.token()
        node = None
        complete = True
        if t == "CE":
            node = ConstantNode(r.basic(0x04, "<i"))
        elif t == "NULL":
            node = None
        elif t == "TE":
            key = r.basic(0x04, "<i")
            size = r.basic(0xFC, "<I")
            r.expect("(")
            if size == 0:
                r.expect(")")
                node = TableNode(key, [])
            else:
                stack.append(["TE", key, size, []])
                complete = False
        elif t == "SE":
            key = r.basic(0x04, "<i")
            ys = r.int_set()
            r.expect("{")
            stack.append(["SE", key, ys, []])
            complete = False
        else:
            r.fail(f"unexpected token {t!r} in an event map")
        while complete:
            if not stack:
                return node
            frame = stack[-1]
            frame[3].append(node)
            if frame[0] == "TE" and len(frame[3]) == frame[2]:
                r.expect(")")
                stack.pop()
                node = TableNode(frame[1], frame[3])
            elif frame[0] == "SE" and len(frame[3]) == 2:
                r.expect("}")
                stack.pop()
                if frame[3][0] is None or frame[3][1] is None:
                    r.fail("SE with a NULL child")
                node = SplitNode(frame[1], frame[2], frame[3][0], frame[3][1])
            else:
                complete = False


def context_tree_from_bytes(data: bytes, where: str = "<bytes>") -> ContextTree:
    """Parse Kaldi's binary ContextDependency layout (with or without the header) into a :class:`ContextTree`;
    errors name ``where`` and the byte offset."""
    if data.startswith(BINARY_HEADER):
        data = data[len(BINARY_HEADER):]
    r = _Reader(data, where)
    r.expect("ContextDependency")
    n = r.basic(0x04, "<i")
    p = r.basic(0x04, "<i")
    r.expect("ToPdf")
    root = parse_event_map(r)
    r.expect("EndContextDependency")
    return ContextTree(n, p, root)


def to_kaldi(tree: ContextTree):
    """A ``kaldi_hmm_gmm.ContextDependency`` holding ``tree``."""
    return tree_from_bytes(context_dependency_bytes(tree), "<ContextTree>")


def kaldi_to_tree(cd) -> ContextTree:
    """Read a ``kaldi_hmm_gmm.ContextDependency`` back into Python."""
    return context_tree_from_bytes(tree_to_bytes(cd), "<ContextDependency>")
