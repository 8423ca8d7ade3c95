// Formulas written $...$ / $$...$$ in the pages reach the browser as \(...\) and \[...\] inside
// <span class="arithmatex"> (pymdownx.arithmatex, generic mode); notebook markdown keeps its $...$.
// KaTeX, served from this site (javascripts/katex), typesets both. Material's document$ fires on every page
// load, including instant navigation.
document$.subscribe(({ body }) => {
  renderMathInElement(body, {
    delimiters: [
      { left: "$$", right: "$$", display: true },
      { left: "$", right: "$", display: false },
      { left: "\\(", right: "\\)", display: false },
      { left: "\\[", right: "\\]", display: true },
    ],
    ignoredClasses: ["highlight", "highlight-ipynb"],
    throwOnError: false,
  });
});
