"""RAG: collections, documents, chunks with vectors, and the BM25 postings.

Vectors of every size live in one ``vector`` column (no fixed dimension) with a ``dimensions``
column; each size gets its own partial HNSW index on ``embedding::vector(N)`` (384 here, others when
a collection of that size is created), which is how pgvector indexes mixed dimensions. Lexical search
is real BM25: ``rag_postings`` holds each chunk's lexemes (PostgreSQL's ``english`` configuration:
stemmed, stop words dropped) with their term frequency.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    uuid = postgresql.UUID(as_uuid=True)
    now = sa.func.now()
    op.create_table(
        "rag_collections",
        sa.Column("id", uuid, primary_key=True),
        sa.Column(
            "tenant_id", uuid, sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False, server_default=""),
        sa.Column("embedding_model", sa.String(128), nullable=False),
        sa.Column("dimensions", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.UniqueConstraint("tenant_id", "name", name="uq_rag_collections_tenant_name"),
    )
    op.create_table(
        "rag_documents",
        sa.Column("id", uuid, primary_key=True),
        sa.Column(
            "collection_id",
            uuid,
            sa.ForeignKey("rag_collections.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("external_id", sa.String(256), nullable=False),
        sa.Column("source", sa.String(512), nullable=False),
        sa.Column("source_type", sa.String(16), nullable=False),
        sa.Column("metadata", postgresql.JSONB(), nullable=False, server_default="{}"),
        sa.Column("content_sha256", sa.String(64), nullable=False),
        sa.Column("characters", sa.Integer(), nullable=False),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        sa.Column("chunk_size", sa.Integer(), nullable=False),
        sa.Column("chunk_overlap", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.UniqueConstraint("collection_id", "external_id", name="uq_rag_documents_external_id"),
    )
    op.execute(
        """
        CREATE TABLE rag_chunks (
            id uuid PRIMARY KEY,
            document_id uuid NOT NULL REFERENCES rag_documents(id) ON DELETE CASCADE,
            collection_id uuid NOT NULL REFERENCES rag_collections(id) ON DELETE CASCADE,
            position integer NOT NULL,
            content text NOT NULL,
            char_start integer NOT NULL,
            char_end integer NOT NULL,
            page integer,
            token_count integer NOT NULL,
            lexeme_count integer NOT NULL,
            dimensions integer NOT NULL,
            embedding vector NOT NULL
        )
        """
    )
    op.create_index("ix_rag_chunks_collection", "rag_chunks", ["collection_id"])
    op.create_index("ix_rag_chunks_document", "rag_chunks", ["document_id", "position"])
    op.execute(
        "CREATE INDEX ix_rag_chunks_hnsw_384 ON rag_chunks "
        "USING hnsw ((embedding::vector(384)) vector_cosine_ops) WHERE dimensions = 384"
    )
    op.create_table(
        "rag_postings",
        sa.Column("collection_id", uuid, nullable=False),
        sa.Column("lexeme", sa.Text(), nullable=False),
        sa.Column(
            "chunk_id", uuid, sa.ForeignKey("rag_chunks.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("tf", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("collection_id", "lexeme", "chunk_id", name="pk_rag_postings"),
    )
    op.create_index("ix_rag_postings_chunk", "rag_postings", ["chunk_id"])


def downgrade() -> None:
    op.drop_table("rag_postings")
    op.drop_table("rag_chunks")
    op.drop_table("rag_documents")
    op.drop_table("rag_collections")
