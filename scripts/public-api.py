#!/usr/bin/env python3
"""Prints a crate's public API, one item per line, sorted, from rustdoc's JSON output
(`RUSTC_BOOTSTRAP=1 cargo rustdoc -p CRATE --lib -- -Z unstable-options --output-format json`).
Used by scripts/public-api to compare with the snapshot checked in under api/."""
import json
import sys


def ty(t):
    if t is None:
        return "()"
    k, v = next(iter(t.items()))
    if k == "resolved_path":
        return v["path"] + args(v.get("args"))
    if k == "primitive" or k == "generic":
        return v
    if k == "borrowed_ref":
        lt = (v["lifetime"] + " ") if v.get("lifetime") else ""
        return "&" + lt + ("mut " if v["is_mutable"] else "") + ty(v["type"])
    if k == "raw_pointer":
        return ("*mut " if v["is_mutable"] else "*const ") + ty(v["type"])
    if k == "tuple":
        return "(" + ", ".join(ty(x) for x in v) + ")"
    if k == "slice":
        return "[" + ty(v) + "]"
    if k == "array":
        return "[" + ty(v["type"]) + "; " + v["len"] + "]"
    if k in ("impl_trait", "dyn_trait"):
        bounds = v if k == "impl_trait" else [{"trait_bound": {"trait": p["trait"]}} for p in v["traits"]]
        names = [b["trait_bound"]["trait"]["path"] + args(b["trait_bound"]["trait"].get("args"))
                 for b in bounds if "trait_bound" in b]
        return ("impl " if k == "impl_trait" else "dyn ") + " + ".join(names)
    if k == "qualified_path":
        return ty(v["self_type"]) + "::" + v["name"]
    if k == "function_pointer":
        return "fn(" + ", ".join(ty(x[1]) for x in v["sig"]["inputs"]) + ") -> " + ty(v["sig"]["output"])
    return k


def args(a):
    if not a:
        return ""
    if "angle_bracketed" in a:
        parts = []
        for x in a["angle_bracketed"]["args"]:
            if "type" in x:
                parts.append(ty(x["type"]))
            elif "lifetime" in x:
                parts.append(x["lifetime"])
            elif "const" in x:
                parts.append(str(x["const"].get("expr")))
        for c in a["angle_bracketed"].get("constraints", []):
            b = c.get("binding", {})
            if "equality" in b:
                parts.append(c["name"] + " = " + ty(b["equality"].get("type")))
        return "<" + ", ".join(parts) + ">" if parts else ""
    if "parenthesized" in a:
        p = a["parenthesized"]
        return "(" + ", ".join(ty(x) for x in p["inputs"]) + ") -> " + ty(p.get("output"))
    return ""


def sig(name, f):
    s = f["sig"]
    ins = ", ".join(n if n == "self" else n + ": " + ty(t) for n, t in s["inputs"])
    return "fn " + name + "(" + ins + ") -> " + ty(s["output"])


def main(path):
    d = json.load(open(path))
    idx = d["index"]
    out = set()

    def attrs(it):
        return " #[non_exhaustive]" if any("non_exhaustive" in str(a) for a in it.get("attrs", [])) else ""

    def impls(prefix, ids):
        for i in ids:
            im = idx.get(str(i))
            if not im:
                continue
            m = im["inner"]["impl"]
            if m["is_synthetic"] or m["blanket_impl"]:
                continue
            if m["trait"]:
                out.add(f"impl {m['trait']['path']}{args(m['trait'].get('args'))} for {prefix}")
                continue
            for j in m["items"]:
                it = idx.get(str(j))
                if it and it["visibility"] == "public":
                    k, v = next(iter(it["inner"].items()))
                    if k == "function":
                        out.add(prefix + "::" + sig(it["name"], v))
                    elif k == "assoc_const":
                        out.add(prefix + "::const " + it["name"] + ": " + ty(v["type"]))

    def walk(mod_id, prefix, seen):
        if mod_id in seen:
            return
        seen.add(mod_id)
        for i in idx[str(mod_id)]["inner"]["module"]["items"]:
            it = idx.get(str(i))
            if not it or it["visibility"] != "public":
                continue
            item(i, it, prefix, seen)

    def item(i, it, prefix, seen, alias=None):
            k, v = next(iter(it["inner"].items()))
            name = prefix + "::" + (alias or it["name"] or "")
            if k == "module":
                out.add("mod " + name)
                walk(i, name, seen)
            elif k == "use":
                target = idx.get(str(v.get("id")))
                if target is not None and target["crate_id"] == 0 and not v["is_glob"]:
                    item(v["id"], target, prefix, seen, v["name"])
                elif target is not None and target["crate_id"] == 0:
                    walk(v["id"], prefix, seen)
                else:
                    out.add("pub use " + prefix + "::" + v["name"] + " = " + v["source"] + (" glob" if v["is_glob"] else ""))
            elif k == "function":
                out.add(prefix + "::" + sig(alias or it["name"], v))
            elif k == "struct":
                out.add("struct " + name + attrs(it))
                kind = v["kind"]
                fields = kind.get("plain", {}).get("fields", []) if isinstance(kind, dict) else []
                for fid in fields:
                    f = idx.get(str(fid))
                    if f and f["visibility"] == "public":
                        out.add(name + "." + f["name"] + ": " + ty(f["inner"]["struct_field"]))
                impls(name, v["impls"])
            elif k == "enum":
                out.add("enum " + name + attrs(it))
                for vid in v["variants"]:
                    var = idx.get(str(vid))
                    if var:
                        vk = var["inner"]["variant"]["kind"]
                        fields = ""
                        if isinstance(vk, dict) and "struct" in vk:
                            fields = " { " + ", ".join(idx[str(f)]["name"] + ": " + ty(idx[str(f)]["inner"]["struct_field"]) for f in vk["struct"]["fields"] if str(f) in idx) + " }"
                        elif isinstance(vk, dict) and "tuple" in vk:
                            fields = "(" + ", ".join(ty(idx[str(f)]["inner"]["struct_field"]) for f in vk["tuple"] if f is not None and str(f) in idx) + ")"
                        out.add(name + "::" + var["name"] + fields + attrs(var))
                impls(name, v["impls"])
            elif k == "trait":
                out.add("trait " + name)
            elif k == "constant":
                out.add("const " + name + ": " + ty(v["type"]))
            elif k == "static":
                out.add("static " + name + ": " + ty(v["type"]))
            elif k == "type_alias":
                out.add("type " + name + " = " + ty(v["type"]))
            else:
                out.add(k + " " + name)

    root = idx[str(d["root"])]
    walk(d["root"], root["name"], set())
    for line in sorted(out):
        print(line)


if __name__ == "__main__":
    main(sys.argv[1])
