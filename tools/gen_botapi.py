#!/usr/bin/env python3
"""Generate the C++ Bot API types, requests and JSON conversions of sluice.

Reads spec/botapi.json (the format is described in spec/SOURCE.md) and
writes, under OUTPUT_DIR:

  include/sluice/telegram/generated/types_fwd.hpp     forward declarations
  include/sluice/telegram/generated/types/<type>.hpp  one header per type
  include/sluice/telegram/generated/types.hpp         every type
  include/sluice/telegram/generated/methods/<m>.hpp   one request per method
  include/sluice/telegram/generated/methods.hpp       every request
  include/sluice/telegram/generated/method_list.hpp   MethodList of requests
  include/sluice/telegram/generated/bot_api_methods.inc  BotApi member list
  src/types_<n>.cpp, src/methods_<n>.cpp              read_json / write_json

Usage:
  gen_botapi.py SPEC OUTPUT_DIR             generate (files are rewritten
                                            only when their text changes)
  gen_botapi.py SPEC OUTPUT_DIR --list      print the output paths, one a
                                            line, and write nothing

Mapping rules (the C++ side is documented in include/sluice/telegram/):
  Integer -> std::int64_t, Float -> double, Boolean/True -> bool,
  String -> std::string, Array of X -> std::vector<X>, optional fields ->
  std::optional<X>, "Integer or String" -> ChatId, "InputFile or String"
  and String fields that accept "attach://" -> InputFile.
  A type with "subtypes" becomes a struct deriving from std::variant of its
  subtypes. The discriminator is the String field whose description ends in
  'always "x"' or 'must be x' in every subtype. It becomes a static
  constexpr member of the subtype. UNION_OVERRIDES settles unions without
  such a field. Unions that Telegram sends (reachable from Update or from a
  method result) get a final UnknownVariant alternative, so a new subtype
  does not make a whole update unreadable.
  Value cycles (Message.reply_to_message, RichTextBold.text ...) go through
  Box<T>, a copyable heap-allocated value that may be empty. So do the
  optional fields of an object type in the types Telegram sends, so that an
  absent one costs a pointer rather than the size of its type.
  Field names that are C++ keywords get a trailing underscore.

Generation fails with a message naming the type or field when the spec
holds something these rules do not cover.
"""

import json
import re
import sys
from pathlib import Path

# Types and methods per generated .cpp file. Smaller chunks compile in
# parallel; each chunk also pays for parsing Boost.JSON once.
TYPES_PER_CHUNK = 48
METHODS_PER_CHUNK = 60

PRIMITIVES = {
    "Integer": "std::int64_t",
    "Float": "double",
    "Boolean": "bool",
    "True": "bool",
    "String": "std::string",
}

# Names written by hand in include/sluice/telegram/; a spec type or method
# with one of these names would clash.
HAND_WRITTEN = {"InputFile", "ChatId", "Box", "UnknownVariant", "ReplyMarkup",
                "ParseError", "MethodList"}

# Unions whose subtypes carry no "always x" field.
#   presence:      the subtype is chosen by a required key only it has; at
#                  most one subtype may lack such a key and is the fallback.
#   integer_equals: the subtype named by `match` when `field` equals `value`,
#                  otherwise `otherwise`.
UNION_OVERRIDES = {
    "InputMessageContent": {"kind": "presence"},
    "MaybeInaccessibleMessage": {
        "kind": "integer_equals", "field": "date", "value": 0,
        "match": "InaccessibleMessage", "otherwise": "Message",
    },
}

# Anonymous unions of field types that get a name of their own.
SYNTHETIC_UNIONS = {
    ("InlineKeyboardMarkup", "ReplyKeyboardMarkup", "ReplyKeyboardRemove", "ForceReply"): {
        "name": "ReplyMarkup",
        "doc": "One of the four keyboard markups a send method accepts as reply_markup.",
    },
}

# Field type overrides: (owner, field) -> C++ type spelling in spec terms.
# sendMediaGroup takes "Array of InputMediaAudio, InputMediaDocument, ..."
# (one array of a single kind); a vector of the InputMedia union is simpler
# to build, and Telegram rejects mixed albums itself.
FIELD_OVERRIDES = {
    ("sendMediaGroup", "media"): ["Array of InputMedia"],
}

# Fields that the Bot API documents as type True (always true when present)
# but spec/botapi.json lists as Boolean. They default to true, so that
# ReplyKeyboardRemove{} removes the keyboard.
TRUE_FIELDS = {
    ("ReplyKeyboardRemove", "remove_keyboard"),
    ("ForceReply", "force_reply"),
}

# Fields the spec marks required that Telegram added to an existing type in
# a later Bot API version. Replies from servers older than the spec omit
# them (a self-hosted Bot API server that lags behind, recorded replies),
# so they are std::optional here. Every other required field stays strict.
# The entries come from real replies in tests/data that lack them.
LATE_REQUIRED = {
    ("ChatFullInfo", "accent_color_id"),
    ("ChatFullInfo", "max_reaction_count"),
    ("ChatFullInfo", "accepted_gift_types"),
    ("ChatMemberAdministrator", "can_post_stories"),
    ("ChatMemberAdministrator", "can_edit_stories"),
    ("ChatMemberAdministrator", "can_delete_stories"),
    ("ChatMemberBanned", "until_date"),
    ("Poll", "allows_revoting"),
    ("Poll", "members_only"),
    ("PollAnswer", "option_persistent_ids"),
    ("PollOption", "persistent_id"),
    ("Sticker", "is_video"),
    ("Sticker", "type"),
}

CPP_KEYWORDS = set("""
alignas alignof and and_eq asm auto bitand bitor bool break case catch char
char8_t char16_t char32_t class compl concept const consteval constexpr
constinit const_cast continue co_await co_return co_yield decltype default
delete do double dynamic_cast else enum explicit export extern false float for
friend goto if inline int long mutable namespace new noexcept not not_eq
nullptr operator or or_eq private protected public register reinterpret_cast
requires return short signed sizeof static static_assert static_cast struct
switch template this thread_local throw true try typedef typeid typename union
unsigned using virtual void volatile wchar_t while xor xor_eq
""".split())

# Static members every generated struct may have; a field with one of these
# names would clash.
RESERVED_MEMBERS = {"type_name", "method_name", "result_type", "can_upload", "Variant"}

DISCRIMINATOR_RE = re.compile(
    r"(?:always|must be)\s+[\"\u201c]?([a-z][a-z0-9_]*)[\"\u201d]?\s*\.?$")

HEADER_BANNER = ("// Generated by tools/gen_botapi.py from spec/botapi.json ({version}).\n"
                 "// Do not edit: change the generator or the spec instead.\n")

INCLUDE_ROOT = "sluice/telegram/generated"


class GenerationError(Exception):
    pass


def fail(message):
    raise GenerationError(message)


def snake_case(name):
    s = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name)
    s = re.sub(r"(?<=[A-Z])([A-Z][a-z])", r"_\1", s)
    return s.lower()


def pascal_case(method):
    return method[0].upper() + method[1:]


def cpp_member_name(name):
    if name in RESERVED_MEMBERS:
        fail(f"field name {name!r} clashes with a generated static member")
    return name + "_" if name in CPP_KEYWORDS else name


def split_array(spec_type):
    depth = 0
    while spec_type.startswith("Array of "):
        spec_type = spec_type[len("Array of "):]
        depth += 1
    return spec_type, depth


# ---------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------

class Field:
    def __init__(self, owner, spec_field, type_expr, base_types):
        self.owner = owner
        self.json_name = spec_field["name"]
        self.name = cpp_member_name(self.json_name)
        self.required = bool(spec_field["required"])
        self.late_required = (owner, self.json_name) in LATE_REQUIRED
        if self.late_required:
            if not self.required:
                fail(f"{owner}.{self.json_name} is in LATE_REQUIRED but is optional in the spec")
            self.required = False
        self.type_expr = type_expr          # C++ type without optional/Box
        self.base_types = base_types        # [(named type or None, array depth)]
        self.boxed = False
        self.is_file = type_expr == "InputFile"

    def cpp_type(self):
        if self.boxed:
            return f"Box<{self.type_expr}>"
        if self.required:
            return self.type_expr
        return f"std::optional<{self.type_expr}>"

    def shares_header_with_element(self):
        owner_header = TYPE_HEADERS.get(self.owner)
        return owner_header is not None and any(
            TYPE_HEADERS.get(name) == owner_header for name, _ in self.base_types if name)

    def initializer(self):
        # Every member has an initializer: g++ 12 -Wextra warns about members
        # left out of a designated initializer list unless they have one.
        if self.boxed or not self.required:
            return "{}"
        if self.type_expr.startswith("std::vector<") and self.shares_header_with_element():
            # The element may still be incomplete here (a type that contains
            # itself through a union, like RichBlockList and RichBlock), and
            # clang-19 rejects a default member initializer for that vector.
            return ""
        if self.type_expr == "std::int64_t":
            return " = 0"
        if self.type_expr == "double":
            return " = 0.0"
        if self.type_expr == "bool":
            return " = true" if (self.owner, self.json_name) in TRUE_FIELDS else " = false"
        return "{}"


class TypeDef:
    """A spec type (struct or union), a synthetic union, or a method request."""

    def __init__(self, name, href, kind):
        self.name = name
        self.href = href
        self.kind = kind                    # "struct", "union", "request"
        self.fields = []
        self.alternatives = []              # union: C++ alternative types
        self.alt_specs = []                 # union: spec spellings
        self.union_rule = None
        self.discriminator = None           # for a subtype: (field, value)
        self.unknown_alternative = False
        self.doc = None
        self.method_name = None
        self.result_type = None
        self.header = None                  # include path of its header

    def named_deps(self):
        """(type name, by_value) pairs this definition refers to."""
        deps = []
        for f in self.fields:
            for name, depth in f.base_types:
                if name is not None:
                    deps.append((name, depth == 0, f))
        if self.kind == "union":
            for spec in self.alt_specs:
                base, depth = split_array(spec)
                if base not in PRIMITIVES:
                    deps.append((base, depth == 0, None))
        return deps


class Model:
    def __init__(self, spec):
        self.spec = spec
        self.version = spec["version"]
        self.types = {}       # name -> TypeDef (spec types and synthetic unions)
        self.requests = {}    # pascal name -> TypeDef
        self.order = []       # type names, dependencies first
        self.build()

    # -- field types --------------------------------------------------------

    def map_field(self, owner, spec_field):
        types = FIELD_OVERRIDES.get((owner, spec_field["name"]), spec_field["types"])
        description = spec_field.get("description", "")
        if types == ["Integer", "String"]:
            return "ChatId", [(None, 0)]
        if types == ["InputFile", "String"] or types == ["InputFile"]:
            return "InputFile", [(None, 0)]
        if types == ["String"] and "attach://" in description:
            return "InputFile", [(None, 0)]
        if len(types) > 1:
            synthetic = SYNTHETIC_UNIONS.get(tuple(types))
            if synthetic is None:
                fail(f"{owner}.{spec_field['name']}: no mapping for the union {types}")
            return synthetic["name"], [(synthetic["name"], 0)]
        return self.map_single(owner, spec_field["name"], types[0])

    def map_single(self, owner, field_name, spec_type):
        base, depth = split_array(spec_type)
        if base in PRIMITIVES:
            cpp, named = PRIMITIVES[base], None
        elif base == "InputFile":
            cpp, named = "InputFile", None
        elif base in self.spec["types"]:
            cpp, named = base, base
        else:
            fail(f"{owner}.{field_name}: unknown type {spec_type!r}")
        for _ in range(depth):
            cpp = f"std::vector<{cpp}>"
        return cpp, [(named, depth)]

    def map_result(self, method, returns):
        mapped = [self.map_single(method, "result", r)[0] for r in returns]
        if len(mapped) == 1:
            return mapped[0]
        return "std::variant<" + ", ".join(mapped) + ">"

    # -- building -----------------------------------------------------------

    def build(self):
        spec_types = self.spec["types"]
        for name in HAND_WRITTEN:
            if name in spec_types and name != "InputFile":
                fail(f"spec type {name} clashes with a hand-written name")

        for name, spec in spec_types.items():
            if name == "InputFile":
                continue              # written by hand (include/sluice/telegram/input_file.hpp)
            kind = "union" if "subtypes" in spec else "struct"
            td = TypeDef(name, spec["href"], kind)
            if kind == "union":
                td.alt_specs = list(spec["subtypes"])
            for f in spec.get("fields", []):
                type_expr, base_types = self.map_field(name, f)
                td.fields.append(Field(name, f, type_expr, base_types))
            self.types[name] = td

        present = {(n, f.json_name) for n, td in self.types.items() for f in td.fields}
        for owner, field in sorted((LATE_REQUIRED | TRUE_FIELDS) - present):
            fail(f"{owner}.{field} is listed in the generator but not in the spec")

        for key, synthetic in SYNTHETIC_UNIONS.items():
            td = TypeDef(synthetic["name"], None, "union")
            td.alt_specs = list(key)
            td.doc = synthetic["doc"]
            td.union_rule = {"kind": "presence"}
            self.types[td.name] = td

        for td in self.types.values():
            if td.kind == "union":
                self.resolve_union(td)

        for method, spec in self.spec["methods"].items():
            name = pascal_case(method)
            if name in self.types or name in HAND_WRITTEN:
                fail(f"request struct {name} for {method} clashes with a type name")
            td = TypeDef(name, spec["href"], "request")
            td.method_name = method
            td.result_type = self.map_result(method, spec["returns"])
            for f in spec.get("fields", []):
                type_expr, base_types = self.map_field(method, f)
                td.fields.append(Field(method, f, type_expr, base_types))
            self.requests[name] = td

        self.mark_received()
        self.box_optional_objects()
        self.break_value_cycles()
        self.order_and_group()

    def resolve_union(self, td):
        named = []
        for spec in td.alt_specs:
            base, depth = split_array(spec)
            if depth == 0 and base not in PRIMITIVES:
                if base not in self.types:
                    fail(f"union {td.name}: unknown subtype {spec!r}")
                named.append(base)
        td.alternatives = []
        for spec in td.alt_specs:
            td.alternatives.append(self.map_single(td.name, "subtype", spec)[0])

        if td.union_rule is None:
            td.union_rule = UNION_OVERRIDES.get(td.name)
        if td.union_rule is not None:
            if td.union_rule["kind"] == "presence":
                td.union_rule = dict(td.union_rule, keys=self.presence_keys(td.name, named))
            return

        # Find the discriminator: a String field that every object subtype
        # fixes with "always x" / "must be x".
        candidates = None
        values = {}
        for sub in named:
            found = {}
            for f in self.types[sub].fields:
                if f.type_expr != "std::string" or not f.required:
                    continue
                spec_field = self.spec_field(sub, f.json_name)
                m = DISCRIMINATOR_RE.search(spec_field.get("description", ""))
                if m:
                    found[f.json_name] = m.group(1)
            if not found:
                fail(f"union {td.name}: subtype {sub} has no discriminator field "
                     f"(no 'always \"x\"' or 'must be x' in a required String field); "
                     f"add it to UNION_OVERRIDES")
            names = set(found)
            candidates = names if candidates is None else candidates & names
            values[sub] = found
        if not candidates:
            fail(f"union {td.name}: subtypes share no discriminator field")
        if len(candidates) > 1:
            fail(f"union {td.name}: several discriminator fields {sorted(candidates)}")
        field = candidates.pop()

        groups = {}
        for sub in named:
            groups.setdefault(values[sub][field], []).append(sub)
        rule = {"kind": "discriminator", "field": field, "groups": {}}
        for value, subs in groups.items():
            rule["groups"][value] = self.presence_keys(td.name, subs) if len(subs) > 1 else [(subs[0], None)]
        td.union_rule = rule

        for sub in named:
            sub_td = self.types[sub]
            value = values[sub][field]
            if sub_td.discriminator is not None and sub_td.discriminator != (field, value):
                fail(f"{sub}: conflicting discriminators {sub_td.discriminator} and {(field, value)}")
            sub_td.discriminator = (field, value)

    def spec_field(self, type_name, json_name):
        for f in self.spec["types"][type_name].get("fields", []):
            if f["name"] == json_name:
                return f
        fail(f"{type_name}.{json_name}: field not in spec")

    def presence_keys(self, union_name, subs):
        """[(subtype, key or None)]: a required key only that subtype has."""
        result = []
        fallback = []
        for sub in subs:
            others = set()
            for other in subs:
                if other != sub:
                    others |= {f.json_name for f in self.types[other].fields}
            unique = [f.json_name for f in self.types[sub].fields
                      if f.required and f.json_name not in others]
            if unique:
                result.append((sub, unique[0]))
            else:
                fallback.append(sub)
        if len(fallback) > 1:
            fail(f"union {union_name}: subtypes {fallback} have no key of their own")
        return result + [(sub, None) for sub in fallback]

    # -- received types -----------------------------------------------------

    def mark_received(self):
        roots = ["Update"]
        for spec in self.spec["methods"].values():
            for r in spec["returns"]:
                base, _ = split_array(r)
                if base in self.types:
                    roots.append(base)
        seen = set()
        stack = list(roots)
        while stack:
            name = stack.pop()
            if name in seen:
                continue
            seen.add(name)
            for dep, _, _ in self.types[name].named_deps():
                stack.append(dep)
        self.received = seen
        for name in seen:
            td = self.types[name]
            if td.kind == "union" and td.union_rule["kind"] == "discriminator":
                td.unknown_alternative = True
                td.alternatives.append("UnknownVariant")

    # -- optional objects ---------------------------------------------------

    def box_optional_objects(self):
        """Makes optional fields of an object type in received types Box<T>.

        An absent std::optional<T> still takes sizeof(T): with it, Update took
        about 270 KB and Message 32 KB, nearly all of it absent fields. A Box
        takes one pointer and allocates only when the field is present.
        """
        for name in sorted(self.received):
            td = self.types[name]
            if td.kind != "struct":
                continue
            for f in td.fields:
                if f.required or len(f.base_types) != 1:
                    continue
                base, depth = f.base_types[0]
                if base is not None and depth == 0 and base in self.types:
                    f.boxed = True

    # -- cycles -------------------------------------------------------------

    def value_graph(self):
        graph = {name: set() for name in self.types}
        for name, td in self.types.items():
            for dep, by_value, field in td.named_deps():
                if by_value and not (field is not None and field.boxed):
                    graph[name].add(dep)
        return graph

    def all_graph(self):
        graph = {name: set() for name in self.types}
        for name, td in self.types.items():
            for dep, _, _ in td.named_deps():
                graph[name].add(dep)
        return graph

    def break_value_cycles(self):
        while True:
            graph = self.value_graph()
            cyclic = [c for c in tarjan(graph) if len(c) > 1 or c[0] in graph[c[0]]]
            if not cyclic:
                return
            for component in cyclic:
                members = set(component)
                incoming = {}
                for name in sorted(members):
                    for f in self.types[name].fields:
                        if f.boxed:
                            continue
                        for dep, depth in f.base_types:
                            if dep in members and depth == 0:
                                incoming.setdefault(dep, []).append(f)
                if not incoming:
                    fail(f"value cycle {sorted(members)} runs only through union alternatives")
                target = max(sorted(incoming), key=lambda n: len(incoming[n]))
                for f in incoming[target]:
                    f.boxed = True

    # -- order and headers --------------------------------------------------

    def order_and_group(self):
        graph = self.all_graph()
        value = self.value_graph()
        components = tarjan(graph)          # dependencies come first
        self.groups = []
        for component in components:
            members = set(component)
            if len(members) == 1:
                ordered = list(component)
                header_type = ordered[0]
            else:
                ordered = topo_sort(sorted(members), {n: value[n] & members for n in members})
                inside = {n: 0 for n in members}
                for n in members:
                    for d in graph[n] & members:
                        inside[d] += 1
                header_type = max(sorted(members), key=lambda n: inside[n])
            header = f"{INCLUDE_ROOT}/types/{snake_case(header_type)}.hpp"
            for n in ordered:
                self.types[n].header = header
                TYPE_HEADERS[n] = header
            self.groups.append((header, ordered))
            self.order.extend(ordered)
        headers = [g[0] for g in self.groups]
        if len(set(headers)) != len(headers):
            fail("two type groups map to one header name")
        snake = {}
        for name in self.types:
            s = snake_case(name)
            if s in snake:
                fail(f"types {snake[s]} and {name} have the same file name {s}")
            snake[s] = name
        for td in self.requests.values():
            td.header = f"{INCLUDE_ROOT}/methods/{snake_case(td.method_name)}.hpp"


# Type name -> generated header, filled by Model.order_and_group().
TYPE_HEADERS = {}


def tarjan(graph):
    """Strongly connected components in dependency-first order."""
    index = {}
    low = {}
    on_stack = set()
    stack = []
    result = []
    counter = [0]

    def visit(root):
        # Iterative Tarjan, so deep chains do not hit Python's recursion limit.
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                result.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return result


def topo_sort(nodes, deps):
    ordered = []
    done = set()
    visiting = set()

    def visit(n):
        if n in done:
            return
        if n in visiting:
            fail(f"value cycle through {n} left after boxing")
        visiting.add(n)
        for d in sorted(deps[n]):
            visit(d)
        visiting.discard(n)
        done.add(n)
        ordered.append(n)

    for n in nodes:
        visit(n)
    return ordered


# ---------------------------------------------------------------------------
# Emitters
# ---------------------------------------------------------------------------

def cpp_string(s):
    return json.dumps(s)


def field_includes(td, model):
    """Headers needed by the definition of td (other groups only)."""
    headers = set()
    for dep, _, _ in td.named_deps():
        header = model.types[dep].header
        if header != td.header:
            headers.add(header)
    return headers


def std_includes(defs):
    needed = {"<cstdint>", "<string_view>"}
    for td in defs:
        for f in td.fields:
            t = f.cpp_type()
            if "std::optional" in t:
                needed.add("<optional>")
            if "std::string" in t:
                needed.add("<string>")
            if "std::vector" in t:
                needed.add("<vector>")
            if "std::variant" in t:
                needed.add("<variant>")
            if f.boxed:
                needed.add("<sluice/telegram/box.hpp>")
            if "ChatId" in t:
                needed.add("<sluice/telegram/chat_id.hpp>")
            if "InputFile" in t:
                needed.add("<sluice/telegram/input_file.hpp>")
        if td.kind == "union":
            needed.add("<variant>")
            for alt in td.alternatives:
                if "std::string" in alt:
                    needed.add("<string>")
                if "std::vector" in alt:
                    needed.add("<vector>")
            if td.unknown_alternative:
                needed.add("<sluice/telegram/unknown_variant.hpp>")
        if td.kind == "request":
            for token, header in (("std::vector", "<vector>"), ("std::variant", "<variant>"),
                                  ("std::string", "<string>")):
                if token in td.result_type:
                    needed.add(header)
    return needed


def emit_struct(td, out):
    if td.href:
        out.append(f"/// {td.href}")
    elif td.doc:
        out.append(f"/// {td.doc}")
    out.append(f"struct {td.name} {{")
    if td.kind == "request":
        out.append(f"  static constexpr std::string_view method_name = {cpp_string(td.method_name)};")
        out.append(f"  using result_type = {td.result_type};")
        can_upload = "true" if request_can_upload(td, td.model) else "false"
        out.append(f"  static constexpr bool can_upload = {can_upload};")
    else:
        out.append(f"  static constexpr std::string_view type_name = {cpp_string(td.name)};")
    if td.discriminator is not None:
        field, value = td.discriminator
        out.append(f"  static constexpr std::string_view {cpp_member_name(field)} = {cpp_string(value)};")
    if td.kind == "request" or td.kind == "struct":
        if any(True for _ in visible_fields(td)):
            out.append("")
    for f in visible_fields(td):
        comment = ""
        if f.name != f.json_name:
            comment = f"  // JSON key \"{f.json_name}\""
        if f.late_required:
            comment = "  // required in the spec; servers older than it omit the field"
        out.append(f"  {f.cpp_type()} {f.name}{f.initializer()};{comment}")
    out.append("")
    out.append(f"  bool operator==(const {td.name}&) const = default;")
    out.append("};")


def emit_union(td, out):
    if td.href:
        out.append(f"/// {td.href}")
    elif td.doc:
        out.append(f"/// {td.doc}")
    alternatives = ", ".join(td.alternatives)
    out.append(f"struct {td.name} : std::variant<{alternatives}> {{")
    out.append(f"  static constexpr std::string_view type_name = {cpp_string(td.name)};")
    out.append(f"  using Variant = std::variant<{alternatives}>;")
    out.append("  using Variant::Variant;")
    out.append("};")


def visible_fields(td):
    for f in td.fields:
        if td.discriminator is not None and f.json_name == td.discriminator[0]:
            continue
        yield f


def emit_declarations(td, out):
    out.append(f"bool read_json(const boost::json::value& json, {td.name}& out, detail::ReadContext& context);")
    out.append(f"void write_json(boost::json::value& json, const {td.name}& in, detail::WriteContext& context);")


def request_can_upload(td, model):
    seen = set()

    def walk(type_name):
        if type_name in seen:
            return False
        seen.add(type_name)
        t = model.types[type_name]
        for f in t.fields:
            if f.is_file:
                return True
        for dep, _, _ in t.named_deps():
            if walk(dep):
                return True
        return False

    for f in td.fields:
        if f.is_file:
            return True
        for dep, _ in f.base_types:
            if dep is not None and walk(dep):
                return True
    return False


def render_header(model, header, defs, extra_includes):
    out = [HEADER_BANNER.format(version=model.version).rstrip("\n"), "#pragma once", ""]
    includes = sorted(i for i in std_includes(defs) if not i.startswith("<sluice"))
    for inc in includes:
        out.append(f"#include {inc}")
    out.append("")
    sluice = {"<sluice/telegram/json_fwd.hpp>", f"<{INCLUDE_ROOT}/types_fwd.hpp>"}
    sluice |= {i for i in std_includes(defs) if i.startswith("<sluice")}
    sluice |= {f"<{h}>" for h in extra_includes}
    for inc in sorted(sluice):
        out.append(f"#include {inc}")
    out.append("")
    out.append("namespace sluice::telegram {")
    out.append("")
    for td in defs:
        if td.kind == "union":
            emit_union(td, out)
        else:
            emit_struct(td, out)
        out.append("")
        emit_declarations(td, out)
        out.append("")
    out.append("}  // namespace sluice::telegram")
    out.append("")
    return "\n".join(out)


def render_forwarding_header(model, header, target, name):
    return "\n".join([
        HEADER_BANNER.format(version=model.version).rstrip("\n"),
        "#pragma once",
        "",
        f"// {name} is defined together with the types it refers to in a cycle.",
        f"#include <{target}>",
        "",
    ])


def render_types_fwd(model):
    out = [HEADER_BANNER.format(version=model.version).rstrip("\n"), "#pragma once", "",
           "// Forward declarations of every Bot API type and request struct.", "",
           "namespace sluice::telegram {", ""]
    out.append("class ChatId;")
    out.append("class InputFile;")
    out.append("struct UnknownVariant;")
    out.append("template <class T>")
    out.append("class Box;")
    out.append("")
    out.append("// Types")
    for name in sorted(model.types):
        out.append(f"struct {name};")
    out.append("")
    out.append("// Requests, one per method")
    for name in sorted(model.requests):
        out.append(f"struct {name};")
    out.append("")
    out.append("}  // namespace sluice::telegram")
    out.append("")
    return "\n".join(out)


def render_umbrella(model, comment, headers):
    out = [HEADER_BANNER.format(version=model.version).rstrip("\n"), "#pragma once", "",
           f"// {comment}", ""]
    for h in headers:
        out.append(f"#include <{h}>")
    out.append("")
    return "\n".join(out)


def render_method_list(model):
    out = [HEADER_BANNER.format(version=model.version).rstrip("\n"), "#pragma once", "",
           f"#include <{INCLUDE_ROOT}/types_fwd.hpp>", "",
           "namespace sluice::telegram {", "",
           "/// A compile-time list of request types.",
           "template <class... Requests>",
           "struct MethodList {",
           "  static constexpr std::size_t size = sizeof...(Requests);",
           "};", "",
           f"/// Every request struct of {model.version}, in the order of the spec.",
           "/// The members are only declared here; include methods.hpp to use them.",
           "using AllMethods = MethodList<"]
    names = [pascal_case(m) for m in model.spec["methods"]]
    for i, name in enumerate(names):
        out.append(f"    {name}{',' if i + 1 < len(names) else '>;'}")
    out.append("")
    out.append("}  // namespace sluice::telegram")
    out.append("")
    # <cstddef> for std::size_t
    out.insert(3, "#include <cstddef>")
    return "\n".join(out)


def render_bot_api_methods(model):
    """One SLUICE_BOT_API_METHOD(function, Request) line per method, which
    include/sluice/telegram/bot_api.hpp expands into the BotApi members
    (send_message(SendMessage, CallOptions) and so on)."""
    out = [HEADER_BANNER.format(version=model.version).rstrip("\n"),
           "// X-macro list: define SLUICE_BOT_API_METHOD(function, Request) before",
           "// including this file. No include guard, by design.", ""]
    for method in model.spec["methods"]:
        out.append(f"SLUICE_BOT_API_METHOD({snake_case(method)}, {pascal_case(method)})")
    out.append("")
    return "\n".join(out)


# -- conversion code --------------------------------------------------------

def emit_struct_reader(td, out):
    fields = list(visible_fields(td))
    required = [f for f in fields if f.required]
    if len(required) > 64:
        fail(f"{td.name}: more than 64 required fields")
    bit = {f.json_name: i for i, f in enumerate(required)}
    out.append(f"bool read_json(const boost::json::value& json, {td.name}& out, detail::ReadContext& context) {{")
    out.append("  const boost::json::object* object = json.if_object();")
    out.append("  if (object == nullptr) {")
    out.append("    return context.fail_kind(\"object\", json);")
    out.append("  }")
    if not fields:
        out.append("  (void)out;")
        out.append("  return true;")
        out.append("}")
        return
    if required:
        out.append("  std::uint64_t seen = 0;")
    out.append("  for (const boost::json::key_value_pair& member : *object) {")
    out.append("    const std::string_view key = member.key();")
    out.append("    const boost::json::value& value = member.value();")
    out.append("    switch (key.size()) {")
    by_length = {}
    for f in fields:
        by_length.setdefault(len(f.json_name.encode()), []).append(f)
    for length in sorted(by_length):
        out.append(f"      case {length}:")
        for f in by_length[length]:
            out.append(f"        if (key == {cpp_string(f.json_name)}) {{")
            reader = "detail::read_required_box" if (f.boxed and f.required) else "read_json"
            out.append(f"          if (!{reader}(value, out.{f.name}, context)) {{")
            out.append(f"            return context.in_field({cpp_string(f.json_name)});")
            out.append("          }")
            if f.required:
                out.append(f"          seen |= std::uint64_t{{1}} << {bit[f.json_name]};")
            out.append("          continue;")
            out.append("        }")
        out.append("        break;")
    out.append("      default:")
    out.append("        break;")
    out.append("    }")
    out.append("  }")
    if required:
        mask = (1 << len(required)) - 1
        names = ", ".join(cpp_string(f.json_name) for f in required)
        out.append(f"  if (seen != {hex(mask)}u) {{")
        out.append(f"    static constexpr std::string_view kRequired[] = {{{names}}};")
        out.append("    return context.missing_field(kRequired, seen);")
        out.append("  }")
    out.append("  return true;")
    out.append("}")


def emit_struct_writer(td, out):
    out.append(f"void write_json(boost::json::value& json, const {td.name}& in, detail::WriteContext& context) {{")
    fields = list(visible_fields(td))
    if fields or td.discriminator is not None:
        out.append("  boost::json::object& object = json.emplace_object();")
    else:
        out.append("  json.emplace_object();")
    if td.discriminator is not None:
        field, _ = td.discriminator
        out.append(f"  object.emplace({cpp_string(field)}, {td.name}::{cpp_member_name(field)});")
    if not fields:
        out.append("  (void)in;")
        out.append("  (void)context;")
    for f in fields:
        if td.kind == "request" and f.is_file:
            out.append(f"  detail::write_file_member(object, {cpp_string(f.json_name)}, in.{f.name}, context);")
        else:
            out.append(f"  detail::write_member(object, {cpp_string(f.json_name)}, in.{f.name}, context);")
    out.append("}")


def emit_union_reader(td, model, out):
    rule = td.union_rule
    out.append(f"bool read_json(const boost::json::value& json, {td.name}& out, detail::ReadContext& context) {{")
    # Alternatives that the JSON kind selects (RichText: String, Array of RichText).
    for spec, alt in zip(td.alt_specs, td.alternatives):
        base, depth = split_array(spec)
        if depth > 0:
            out.append("  if (json.is_array()) {")
            out.append(f"    return read_json(json, out.emplace<{alt}>(), context);")
            out.append("  }")
        elif base in PRIMITIVES:
            if base != "String":
                fail(f"union {td.name}: primitive alternative {base} is not supported")
            out.append("  if (json.is_string()) {")
            out.append(f"    return read_json(json, out.emplace<{alt}>(), context);")
            out.append("  }")
    out.append("  const boost::json::object* object = json.if_object();")
    out.append("  if (object == nullptr) {")
    kinds = ["object"]
    if any(split_array(s)[1] > 0 for s in td.alt_specs):
        kinds.insert(0, "array")
    if "String" in td.alt_specs:
        kinds.insert(0, "string")
    expected = ", ".join(kinds[:-1]) + " or " + kinds[-1] if len(kinds) > 1 else kinds[0]
    out.append(f"    return context.fail_kind({cpp_string(expected)}, json);")
    out.append("  }")

    def presence_chain(entries, indent):
        lines = []
        for sub, key in entries:
            if key is None:
                lines.append(f"{indent}return read_json(json, out.emplace<{sub}>(), context);")
            else:
                lines.append(f"{indent}if (object->contains({cpp_string(key)})) {{")
                lines.append(f"{indent}  return read_json(json, out.emplace<{sub}>(), context);")
                lines.append(f"{indent}}}")
        if entries[-1][1] is not None:
            keys = ", ".join(k for _, k in entries)
            lines.append(f"{indent}return context.fail({cpp_string('none of the keys ' + keys + ' is present')});")
        return lines

    kind = rule["kind"]
    if kind == "presence":
        out.extend(presence_chain(rule["keys"], "  "))
    elif kind == "integer_equals":
        field = rule["field"]
        out.append(f"  const boost::json::value* tag = object->if_contains({cpp_string(field)});")
        out.append(f"  if (tag != nullptr && tag->is_int64() && tag->get_int64() == {rule['value']}) {{")
        out.append(f"    return read_json(json, out.emplace<{rule['match']}>(), context);")
        out.append("  }")
        out.append(f"  return read_json(json, out.emplace<{rule['otherwise']}>(), context);")
    elif kind == "discriminator":
        field = rule["field"]
        out.append(f"  const boost::json::value* tag_value = object->if_contains({cpp_string(field)});")
        out.append("  if (tag_value == nullptr) {")
        out.append(f"    return context.missing_field({cpp_string(field)});")
        out.append("  }")
        out.append("  const boost::json::string* tag = tag_value->if_string();")
        out.append("  if (tag == nullptr) {")
        out.append(f"    context.fail_kind(\"string\", *tag_value);")
        out.append(f"    return context.in_field({cpp_string(field)});")
        out.append("  }")
        out.append("  const std::string_view tag_view = *tag;")
        for value, entries in rule["groups"].items():
            out.append(f"  if (tag_view == {cpp_string(value)}) {{")
            out.extend(presence_chain(entries, "    "))
            out.append("  }")
        if td.unknown_alternative:
            out.append("  return detail::read_unknown_variant(*object, tag_view, out.emplace<UnknownVariant>());")
        else:
            out.append(f"  return context.unknown_value({cpp_string(field)}, tag_view);")
    else:
        fail(f"union {td.name}: unknown rule {kind}")
    out.append("}")


def emit_union_writer(td, out):
    out.append(f"void write_json(boost::json::value& json, const {td.name}& in, detail::WriteContext& context) {{")
    out.append(f"  std::visit([&](const auto& alternative) {{ write_json(json, alternative, context); }},")
    out.append(f"             static_cast<const {td.name}::Variant&>(in));")
    out.append("}")


def render_source(model, defs, banner_what):
    headers = sorted({td.header for td in defs})
    out = [HEADER_BANNER.format(version=model.version).rstrip("\n"),
           f"// JSON conversions of {banner_what}.", "",
           "#include <cstdint>", "#include <string_view>", "#include <variant>", "",
           "#include <boost/json/object.hpp>", "#include <boost/json/value.hpp>", "",
           "#include <sluice/telegram/json.hpp>"]
    for h in headers:
        out.append(f"#include <{h}>")
    out.append("")
    out.append("namespace sluice::telegram {")
    out.append("")
    for td in defs:
        if td.kind == "union":
            emit_union_reader(td, model, out)
            out.append("")
            emit_union_writer(td, out)
        else:
            emit_struct_reader(td, out)
            out.append("")
            emit_struct_writer(td, out)
        out.append("")
    out.append("}  // namespace sluice::telegram")
    out.append("")
    return "\n".join(out)


def chunks(items, size):
    return [items[i:i + size] for i in range(0, len(items), size)]


def generate(spec_path, output_dir):
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    model = Model(spec)
    for td in list(model.types.values()) + list(model.requests.values()):
        td.model = model
    files = {}
    inc = Path("include")

    files[inc / INCLUDE_ROOT / "types_fwd.hpp"] = render_types_fwd(model)

    type_headers = []
    for header, members in model.groups:
        defs = [model.types[n] for n in members]
        extra = set()
        for td in defs:
            extra |= field_includes(td, model)
        files[inc / header] = render_header(model, header, defs, extra)
        type_headers.append(header)
        for n in members:
            own = f"{INCLUDE_ROOT}/types/{snake_case(n)}.hpp"
            if own != header:
                files[inc / own] = render_forwarding_header(model, own, header, n)
    files[inc / INCLUDE_ROOT / "types.hpp"] = render_umbrella(
        model, "Every Bot API type.", type_headers)

    method_headers = []
    for method in spec["methods"]:
        td = model.requests[pascal_case(method)]
        extra = field_includes(td, model)
        for token in re.findall(r"[A-Z][A-Za-z0-9]*", td.result_type):
            if token in model.types:
                extra.add(model.types[token].header)
        files[inc / td.header] = render_header(model, td.header, [td], extra)
        method_headers.append(td.header)
    files[inc / INCLUDE_ROOT / "methods.hpp"] = render_umbrella(
        model, "Every Bot API request struct.", method_headers)
    files[inc / INCLUDE_ROOT / "method_list.hpp"] = render_method_list(model)
    files[inc / INCLUDE_ROOT / "bot_api_methods.inc"] = render_bot_api_methods(model)

    type_defs = [model.types[n] for n in model.order]
    for i, part in enumerate(chunks(type_defs, TYPES_PER_CHUNK)):
        files[Path("src") / f"types_{i}.cpp"] = render_source(
            model, part, f"types {part[0].name} to {part[-1].name}")
    request_defs = [model.requests[pascal_case(m)] for m in spec["methods"]]
    for i, part in enumerate(chunks(request_defs, METHODS_PER_CHUNK)):
        files[Path("src") / f"methods_{i}.cpp"] = render_source(
            model, part, f"requests {part[0].name} to {part[-1].name}")
    return {Path(output_dir) / path: text for path, text in files.items()}


def main(argv):
    if len(argv) not in (3, 4) or (len(argv) == 4 and argv[3] != "--list"):
        sys.stderr.write(__doc__)
        return 2
    try:
        files = generate(argv[1], argv[2])
    except GenerationError as error:
        sys.stderr.write(f"gen_botapi.py: {error}\n")
        return 1
    if len(argv) == 4:
        for path in sorted(files):
            print(path.as_posix())
        return 0
    for path, text in files.items():
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
