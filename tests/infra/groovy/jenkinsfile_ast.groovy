// Parses Groovy files to the syntax tree (phase CONVERSION, as Jenkins' CPS
// parser does first) and prints, as JSON, every stage('...') of each file with
// the steps called inside it, the names called in top-level options{}, and the
// text of every interpolated string ("...${x}..."), anywhere in the file.
// A syntax error exits non-zero with the compiler's message.
//
// Usage: groovy jenkinsfile_ast.groovy FILE...

import groovy.json.JsonOutput
import org.codehaus.groovy.ast.CodeVisitorSupport
import org.codehaus.groovy.ast.expr.ArgumentListExpression
import org.codehaus.groovy.ast.expr.ClosureExpression
import org.codehaus.groovy.ast.expr.ConstantExpression
import org.codehaus.groovy.ast.expr.GStringExpression
import org.codehaus.groovy.ast.expr.MethodCallExpression
import org.codehaus.groovy.control.CompilationUnit
import org.codehaus.groovy.control.CompilerConfiguration
import org.codehaus.groovy.control.Phases

class CallNames extends CodeVisitorSupport {
    List<String> names = []
    void visitMethodCallExpression(MethodCallExpression call) {
        names << call.methodAsString
        super.visitMethodCallExpression(call)
    }
}

class GStrings extends CodeVisitorSupport {
    List<String> texts = []
    void visitGStringExpression(GStringExpression expression) {
        texts << expression.verbatimText
        super.visitGStringExpression(expression)
    }
}

class Stages extends CodeVisitorSupport {
    List<Map> stages = []
    List<String> pipelineOptions = []
    int depth = 0

    private static ClosureExpression closureArg(MethodCallExpression call) {
        def args = call.arguments
        if (args instanceof ArgumentListExpression) {
            def last = args.expressions ? args.expressions[-1] : null
            return last instanceof ClosureExpression ? last : null
        }
        return null
    }

    void visitMethodCallExpression(MethodCallExpression call) {
        def name = call.methodAsString
        def args = call.arguments
        if (name == 'stage' && args instanceof ArgumentListExpression
                && args.expressions && args.expressions[0] instanceof ConstantExpression) {
            def body = closureArg(call)
            def calls = new CallNames()
            def options = new CallNames()
            body?.code?.visit(calls)
            // options { ... } directly in this stage
            body?.code?.visit(new CodeVisitorSupport() {
                void visitMethodCallExpression(MethodCallExpression inner) {
                    if (inner.methodAsString == 'options') {
                        closureArg(inner)?.code?.visit(options)
                        return
                    }
                    if (inner.methodAsString == 'stage') { return }
                    super.visitMethodCallExpression(inner)
                }
            })
            stages << [name: args.expressions[0].value, calls: calls.names.unique().sort(),
                       options: options.names.unique().sort(), line: call.lineNumber]
        } else if (name == 'options' && depth == 1) {
            def names = new CallNames()
            closureArg(call)?.code?.visit(names)
            pipelineOptions.addAll(names.names)
        }
        if (name == 'pipeline') { depth++ }
        super.visitMethodCallExpression(call)
        if (name == 'pipeline') { depth-- }
    }
}

def result = [:]
args.each { path ->
    def unit = new CompilationUnit(new CompilerConfiguration())
    unit.addSource(new File(path))
    unit.compile(Phases.CONVERSION)
    def visitor = new Stages()
    def gstrings = new GStrings()
    unit.AST.modules.each { module ->
        // The script body (the pipeline); stages are not declared in helper methods.
        module.statementBlock.visit(visitor)
        module.statementBlock.visit(gstrings)
        module.classes.each { cls ->
            cls.methods.findAll { it.name != 'run' }.each { m -> m.code?.visit(gstrings) }
        }
    }
    result[path] = [stages: visitor.stages, pipelineOptions: visitor.pipelineOptions.unique().sort(),
                    gstrings: gstrings.texts]
}
println JsonOutput.toJson(result)
