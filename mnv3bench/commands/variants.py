"""`mnv3bench variants`: the catalog of the paper's variants and the grammar's axes.

Fast by design: MAdds, parameters and h-swish sites come from the architecture spec,
so this command never imports TensorFlow.
"""

from __future__ import annotations

from rich.table import Table

from mnv3bench.cliapp import JsonOpt, app, print_json, stdout
from mnv3bench.variants import GRAMMAR, catalog_entries, grammar_axes


def catalog_rows() -> list[dict]:
    from mnv3bench.arch import hswish_sites
    from mnv3bench.flops import count

    rows = []
    for entry in catalog_entries():
        counts = count(entry.variant)
        rows.append(
            {
                "name": entry.variant.name,
                "tables": list(entry.used_in),
                "madds": counts.madds,
                "params": counts.params,
                "hswish_sites": hswish_sites(entry.variant),
            }
        )
    return rows


@app.command(help=f"List the paper's variants with MAdds, parameters and h-swish sites.\n\nName grammar: {GRAMMAR}")
def variants(json_output: JsonOpt = False) -> None:
    rows = catalog_rows()
    if json_output:
        print_json({"variants": rows, "grammar": GRAMMAR, "axes": grammar_axes()})
        return
    table = Table(title="mnv3bench variants (the paper's)")
    table.add_column("variant")
    table.add_column("tables")
    table.add_column("MAdds", justify="right")
    table.add_column("params", justify="right")
    table.add_column("h-swish sites", justify="right")
    for row in rows:
        table.add_row(
            row["name"],
            ", ".join(row["tables"]),
            f"{row['madds'] / 1e6:.1f}M",
            f"{row['params'] / 1e6:.3f}M",
            str(row["hswish_sites"]),
        )
    stdout.print(table)
    stdout.print(f"Grammar: {GRAMMAR}", highlight=False, soft_wrap=True)
    for axis, values in grammar_axes().items():
        stdout.print(f"  {axis}: {', '.join(values)}", highlight=False)
