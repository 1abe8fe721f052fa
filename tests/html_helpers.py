"""Reading the HTML report's tables back in tests: one place for the cell parsing every format comparison uses."""

import html as html_lib
import re


def html_rows(fragment: str) -> list[list[str]]:
    """The unescaped <td> cells of every <tr> in `fragment` (a page, a table or its body), row by row."""
    return [[html_lib.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", tr)]
            for tr in re.findall(r"<tr>(.*?)</tr>", fragment, flags=re.S)]
