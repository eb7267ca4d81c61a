// What is out of place on the dashboard's page, as sentences (none when all is well); run by
// tests/test_dashboard_layout.py in the page.
const problems = [];
const page = document.documentElement;
if (page.scrollWidth > page.clientWidth) problems.push(`the page scrolls sideways (${page.scrollWidth} > ${page.clientWidth})`);
for (const selector of ["#tabs", "main", "#detail"]) {
  const box = document.querySelector(selector);
  if (box && !box.hidden && box.scrollWidth > box.clientWidth + 1)
    problems.push(`${selector} scrolls sideways (${box.scrollWidth} > ${box.clientWidth})`);
}
const said = (el) => (el.textContent || el.tagName).trim().slice(0, 50);
for (const row of document.querySelectorAll("tr")) {
  const edge = row.getBoundingClientRect();
  for (const el of row.querySelectorAll("*")) {
    const box = el.getBoundingClientRect();
    if ((box.width || box.height) && (box.left < edge.left - 0.5 || box.right > edge.right + 0.5))
      problems.push(`"${said(el)}" sticks out of its row (${box.left}-${box.right} vs ${edge.left}-${edge.right})`);
  }
  for (const cell of row.cells)
    if (cell.scrollWidth > cell.clientWidth + 1) problems.push(`"${said(cell)}" overflows its cell`);
}
for (const button of document.querySelectorAll("#view button, #detail button")) {
  const box = button.getBoundingClientRect();
  const pane = button.closest("main, aside").getBoundingClientRect();
  if (box.left < pane.left - 0.5 || box.right > pane.right + 0.5 || box.right > page.clientWidth)
    problems.push(`the button "${said(button)}" is cut off`);
}
// A line may end at a space, before a URL's "/", "?" or "&", or after "?", "&" or "-".
const range = document.createRange();
for (const cell of document.querySelectorAll("td")) {
  const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.data;
    let top = null;
    for (let i = 0; i < text.length; i++) {
      range.setStart(node, i);
      range.setEnd(node, i + 1);
      const rects = range.getClientRects();
      if (!rects.length) continue;
      if (top !== null && Math.abs(rects[0].top - top) > 2) {
        const before = text[i - 1], after = text[i];
        const fine = /\s/.test(before) || /\s/.test(after) || "/?&".includes(after) || "?&-".includes(before);
        if (!fine) problems.push(`"${text}" is broken inside a word: "${text.slice(0, i)}|${text.slice(i)}"`);
      }
      top = rects[0].top;
    }
  }
}
return problems;
